"""Everything that touches the network, the disk or the command line (the top layer).

proto/          pooled.proto (source of truth) and its checked-in generated code
records         plain dataclasses the services exchange (job calls and answers, aborts, seeds)
array_stream    named arrays as ArraysChunk streams of at most 1 MiB
peer_wire       party-to-party messages as hand-built PeerChunks in PeerFrames (field numbers from the descriptors)
messages        protobuf messages <-> records for the dealer and node services
certs, tls      consortium CA and member certificates; mutual TLS, caller identity, roles
mailbox         a node's receive buffer, keyed by (session, source, tag)
peer_socket     mutual-TLS data sockets between parties: contexts, identity checks, length-prefixed frames
outbox, inlet   both ends of the one data socket per ordered pair of parties (written by the sender's thread)
peer_links      a node's data port, channels, outboxes and inlets, and which sessions a broken socket fails
grpc_transport  mpc.transport.Transport over the data sockets: direct sends, failure detection over gRPC
peer_service    PeerExchange servicer (the data port, aborts, pings)
dealer_service  the dealer: per-session seeds, corrections for the last party, registry
dealer_client   a node's side of the dealer, with prefetching of planned material
jobs            the explicit registry of named computations a node runs
node            a party node: serves PeerExchange and Node, runs jobs in isolated sessions
client          the analyst: runs a job on every node and reconstructs the outputs
local           a whole consortium as local processes (demo, tests, benchmarks)
cli, commands/  the `pooled` command, one module per subcommand
"""
