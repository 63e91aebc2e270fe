"""The compiled output as an ordered list of files, its serialisation and its writer."""
