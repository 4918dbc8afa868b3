"""The example teaching repository; packaged as ``casesync.examples`` for ``casesync demo``."""
