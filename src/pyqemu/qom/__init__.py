"""The object model: types, properties, the composition tree."""
