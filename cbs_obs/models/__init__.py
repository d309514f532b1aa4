"""Model plumbing: model cards and downloads (registry, download), checkpoint loading, where
networks run (device) and how (inference, onnx_runtime)."""
