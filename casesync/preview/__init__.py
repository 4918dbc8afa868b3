"""``casesync preview``: a static, self-contained site of the cases (see ``build.py``).

Import ``casesync.preview.build`` only from the preview command: it pulls in numpy and Pillow.
"""
