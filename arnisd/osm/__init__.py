"""OpenStreetMap input: files, Overpass, and the element model."""
