"""The model: the timm encoder (:mod:`.encoder`), the head and view network (:mod:`.net`), the window
classifier (:mod:`.classifier`), the checkpoint format (:mod:`.checkpoint`) and loading a trained
model for inference (:mod:`.loading`)."""
