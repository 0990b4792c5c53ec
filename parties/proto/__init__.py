"""Generated protobuf/gRPC code for `pooled.proto` (only `parties.array_stream`, `parties.peer_wire` and
`parties.messages` build or read messages; the servicers use the service stubs)."""
