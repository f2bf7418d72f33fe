"""World model: blocks, canvas, rasterising, and the element families."""
