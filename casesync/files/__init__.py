"""Facts about files on disk: formats, hashes, DICOM slice keys, caches."""
