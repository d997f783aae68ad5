"""An example no8sd input plugin: a file whose appended lines drive resources."""
