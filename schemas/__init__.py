"""JSON Schemas for casesync files; packaged as ``casesync.schemas`` so installs find them."""
