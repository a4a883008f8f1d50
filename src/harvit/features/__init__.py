"""Window statistics in torch (:mod:`.statistics`): used by the model beside the images and by the
classic baseline alike."""
