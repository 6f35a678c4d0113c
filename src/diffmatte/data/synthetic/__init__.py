"""The data engine's generators: each draws one kind of matte the photographs lack (transparent
matter and refractive glass, hair and fur, blurred shapes and nets, real shapes recoloured), on
``procedural``'s shared drawing; :mod:`diffmatte.data.engine` composites them."""
