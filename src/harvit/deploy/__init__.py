"""Using a trained model: ``harvit predict`` on recordings (:mod:`.predict`) and ONNX export (:mod:`.export`)."""
