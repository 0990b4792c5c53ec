"""Generated protobuf/gRPC code for `pooled.proto` (only `parties/codec.py` and the servicers use it)."""
