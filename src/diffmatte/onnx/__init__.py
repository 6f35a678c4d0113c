"""ONNX: a model exported as two graphs (``export``), the folder's format (``format``) and a
network that runs the graphs with onnxruntime (``network``), which the pipeline holds as it
holds a torch network. Import the modules themselves: this face imports nothing, so naming
the package costs neither onnx nor onnxruntime."""
