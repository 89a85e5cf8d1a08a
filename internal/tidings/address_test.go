package tidings
