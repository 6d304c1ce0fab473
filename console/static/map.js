// The map page: the agency's roads and waterways (GeoJSON) with the sites, checkpoints and open
// tasks over them, drawn by the Leaflet shipped in /static/leaflet (no tiles from elsewhere).
"use strict";
(function () {
  const el = document.getElementById("map");
  const raw = document.getElementById("map-data");
  if (!el || !raw || !window.L) return;
  const data = JSON.parse(raw.textContent);
  const map = L.map(el, {attributionControl: false, zoomSnap: 0.25});
  const styles = {
    river: {color: "#5b9bd5", weight: 1, fillColor: "#a9cfee", fillOpacity: 0.8},
    channel: {color: "#2f6fa7", weight: 2, dashArray: "6 4"},
    road: {color: "#b5651d", weight: 4},
  };
  const base = L.geoJSON(data.geojson, {
    style: (f) => styles[f.properties.kind] || {color: "#666", weight: 2},
    onEachFeature: (f, layer) => layer.bindTooltip(f.properties.name, {sticky: true}),
  });
  // the view first (Leaflet draws vectors only on a map with a view), then the layers
  const bounds = base.getBounds();
  data.places.forEach((p) => bounds.extend(p.at));
  if (bounds.isValid()) map.fitBounds(bounds, {padding: [24, 24]});
  else map.setView([28.2, 112.95], 10);
  base.addTo(map);
  data.places.forEach(function (p) {
    L.circleMarker(p.at, {radius: 8, weight: p.trouble ? 4 : 2,
      color: p.trouble ? "#a4161a" : "#fff", fillOpacity: 1,
      fillColor: p.kind === "site" ? "#0b5cad" : "#0f8b8d", className: "place " + p.kind})
      .bindTooltip(p.name).addTo(map);
  });
  data.tasks.forEach(function (t, i) {
    // beside its place, a little apart from the others there
    const at = [t.at[0] + 0.004 * Math.sin(i + 1), t.at[1] + 0.004 * Math.cos(i + 1)];
    L.circleMarker(at, {radius: 6, color: "#fff", weight: 1, fillOpacity: 1,
      fillColor: t.overdue ? "#a4161a" : "#d9822b", className: "task" + (t.overdue ? " overdue" : "")})
      .bindTooltip(t.overdue ? "已超期任务" : "待办任务").addTo(map);
  });
  el.dataset.ready = String(data.places.length);
})();
