"""What turns notebooks into a book: run profiles, the session header, execution,
fingerprints of committed outputs, and the Jupyter Book build.
"""
