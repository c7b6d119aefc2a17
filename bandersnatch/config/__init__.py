"""The INI file read once into a typed Config: values, bandersnatch 8 names, filters, storage,
network. Every error names the file, the section and the option. May import store and formats.
"""
