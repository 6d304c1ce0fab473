"""The checks of the waterway registry (configs/waterways.yaml) that its schema cannot make;
``offsite.config.load_waterways`` loads it and names each problem's file, line and field."""

from __future__ import annotations

import shapely

from events.water import WaterRegistry, Where, registry_problems


def problems(reg: WaterRegistry) -> list[tuple[Where, str]]:
    """What the schema cannot see: references between entries, then shapes shapely refuses."""
    return registry_problems(reg) + geometry_problems(reg)


def geometry_problems(reg: WaterRegistry) -> list[tuple[Where, str]]:
    """Polygons that cross themselves, lines of zero length: shapely's view of the shapes."""
    found: list[tuple[Where, str]] = []
    polygons = [("sections", i, s.polygon) for i, s in enumerate(reg.sections)]
    polygons += [("no_dredging_zones", i, z.polygon) for i, z in enumerate(reg.no_dredging_zones)]
    for kind, i, ring in polygons:
        shape = shapely.Polygon(ring)
        if not shape.is_valid or shape.area == 0:
            why = shapely.is_valid_reason(shape)
            found.append(((kind, i, "polygon"), f"not a simple polygon ({why})"))
    lines = [("checkpoints", i, "line", c.line) for i, c in enumerate(reg.checkpoints)]
    for i, c in enumerate(reg.controlled_sections):
        lines += [("controlled_sections", i, "entry_up", c.entry_up)]
        lines += [("controlled_sections", i, "entry_down", c.entry_down)]
    for kind, i, field, (a, b) in lines:
        if a == b:
            found.append(((kind, i, field), "a line needs two different points"))
    return found
