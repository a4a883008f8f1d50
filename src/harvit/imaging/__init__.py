"""Signals to images, on the device: views (:mod:`.views`), scaling (:mod:`.scaling`), augmentation
(:mod:`.augment`), the encodings GASF/GADF/MTF/RP/spectrogram (:mod:`.encodings`) and the imager that
combines them (:mod:`.imager`)."""
