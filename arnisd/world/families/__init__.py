"""One module per OSM element family; each draws its elements onto a canvas."""
