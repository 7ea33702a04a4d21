// French first, English on request: interface strings, human labels of the raw property names the service sends,
// and numbers written the way each language writes them (fr: 1 612,75 m²).
"use strict";

let lang = localStorage.getItem("geovigie.lang") === "en" ? "en" : "fr";

export const getLang = () => lang;
export function setLang(value) {
  lang = value === "en" ? "en" : "fr";
  localStorage.setItem("geovigie.lang", lang);
  document.documentElement.lang = lang;
}

const UI = {
  title: ["Diagnostics du territoire", "Territorial diagnostics"],
  layers: ["Couches", "Layers"],
  legend: ["Légende", "Legend"],
  basemap: ["Fond de carte", "Base map"],
  base_offline: ["Hors ligne (limites IGN, relief LiDAR)", "Offline (IGN boundaries, LiDAR relief)"],
  base_plan: ["Plan IGN (en ligne)", "Plan IGN (online)"],
  base_ortho: ["Photographies aériennes IGN (en ligne)", "IGN aerial photographs (online)"],
  unreachable: ["{0} injoignable (hors ligne ?) : fond hors ligne affiché.",
    "{0} unreachable (offline?): offline base shown."],
  opacity: ["Opacité", "Opacity"],
  zoom: ["Zoom", "Zoom"],
  zoom_to: ["Centrer la carte sur cette couche", "Zoom to this layer"],
  pass: ["Passage", "Pass"],
  no_data: ["pas de données", "no data"],
  no_data_long: ["Pas de données : zone non couverte ou couverte en partie par l'image",
    "No data: zone not or only partly covered by the image"],
  layer_unavailable: ["Couche « {0} » indisponible : {1}", "Layer “{0}” unavailable: {1}"],
  broken: ["{0} couche(s) illisible(s), ignorée(s) : {1}", "{0} unreadable layer(s) skipped: {1}"],
  load_failed: ["Impossible de charger les couches : {0}", "Could not load the layers: {0}"],
  close: ["Fermer", "Close"],
  zone_figures: ["Chiffres de la zone", "Zone figures"],
  zone_pick: ["Ouvrir les chiffres d'une zone…", "Open the figures of a zone…"],
  no_figures: ["Aucune couche de chiffres ne couvre cette zone.", "No figure layer covers this zone."],
  chart_veg: ["Part de végétation (%)", "Vegetation share (%)"],
  chart_zan: ["Artificialisation comparée à la référence (ha/an)", "Land take against the reference (ha/yr)"],
  chart_heat: ["Intensité de l'îlot de chaleur par passage (°C)", "Heat-island intensity by pass (°C)"],
  measured: ["Mesuré", "Measured"],
  reference: ["Référence 2011–2021", "Reference 2011–2021"],
  target: ["Objectif 2021–2031", "Target 2021–2031"],
  dense: ["dense", "dense"],
  sparse: ["clairsemée", "sparse"],
  site: ["Site", "Site"],
  volume_pm: ["{0} ± {1}", "{0} ± {1}"],
  volume_unknown_unc: ["{0} (incertitude non estimée)", "{0} (uncertainty not estimated)"],
  history: ["Historique", "History"],
  history_unavailable: ["Historique du service indisponible : passages du fichier seulement.",
    "Service history unavailable: passes from the file only."],
  feedback: ["Votre avis sur ce site", "Your feedback on this site"],
  feedback_short: ["Avis", "Feedback"],
  feedback_unavailable: ["Avis indisponible (le service ne reçoit pas encore d'avis).",
    "Feedback unavailable (the service does not take feedback yet)."],
  feedback_needs_key: ["Saisissez votre clé API (en bas du panneau) pour donner un avis.",
    "Type your API key (bottom of the panel) to send feedback."],
  comment: ["Commentaire", "Comment"],
  send: ["Envoyer", "Send"],
  sent: ["Avis enregistré.", "Feedback saved."],
  refused: ["Refusé : {0}", "Refused: {0}"],
  key: ["Clé API", "API key"],
  key_save: ["Enregistrer", "Save"],
  key_forget: ["Oublier", "Forget"],
  key_set: ["Clé enregistrée dans ce navigateur.", "Key kept in this browser."],
  key_none: ["Aucune clé : lecture seule.", "No key: read only."],
  jobs: ["Traitements", "Jobs"],
  jobs_unavailable: ["Traitements indisponibles (le service n'accepte pas encore de travaux).",
    "Jobs unavailable (the service does not take jobs yet)."],
  jobs_needs_key: ["Une clé API est nécessaire pour lancer un traitement.", "An API key is needed to submit a job."],
  territory: ["Territoire (insee:32001, dep:95)", "Territory (insee:32001, dep:95)"],
  period: ["Période (début/fin)", "Period (start/end)"],
  collection: ["Collection d'images", "Image collection"],
  tasks: ["Traitements", "Tasks"],
  submit: ["Lancer", "Submit"],
  job_state: ["Traitement {0} : {1}", "Job {0}: {1}"],
  job_tiles: ["Tuiles {0} / {1} ({2})", "Tiles {0} / {1} ({2})"],
  job_inputs: ["Entrées zan / dumps (JSON, facultatif)", "zan / dumps inputs (JSON, optional)"],
  lang_switch: ["English", "Français"],
  status_new: ["nouveau", "new"],
  status_persisting: ["persistant", "persisting"],
  status_grown: ["agrandi", "grown"],
  status_shrunk: ["réduit", "shrunk"],
  status_not_observed: ["non observé (pas de données)", "not observed (no data)"],
  status_removed: ["disparu", "removed"],
  status_covered: ["couverte par l'image", "covered by the image"],
  status_partial: ["couverte en partie : pas de données", "partly covered: no data"],
  status_not_covered: ["non couverte : pas de données", "not covered: no data"],
  feedback_confirmed: ["confirmé", "confirmed"],
  feedback_false_alarm: ["fausse alerte", "false alarm"],
  feedback_cleaned: ["nettoyé", "cleaned"],
  task_landcover: ["occupation du sol", "land cover"],
  task_vegetation: ["végétation", "vegetation"],
  task_zan: ["ZAN", "ZAN"],
  task_dumps: ["dépôts sauvages", "dump sites"],
  task_heat: ["îlots de chaleur", "heat islands"],
  group_dumps: ["Dépôts sauvages", "Illegal dumps"],
  group_zan: ["ZAN (artificialisation)", "ZAN (land take)"],
  group_vegetation: ["Végétation", "Vegetation"],
  group_heat: ["Îlots de chaleur", "Heat islands"],
  group_landcover: ["Occupation du sol", "Land cover"],
  group_imagery: ["Imagerie", "Imagery"],
  series_dumps: ["Sites de dépôt", "Dump sites"],
  series_dumps_candidate: ["Sites candidats (à vérifier)", "Candidate sites (to check)"],
  series_zan: ["Changements ZAN", "ZAN changes"],
  series_zan_zones: ["ZAN par zone", "ZAN per zone"],
  series_ndvi: ["NDVI (indice de végétation)", "NDVI (vegetation index)"],
  series_vegetation_zones: ["Végétation par commune", "Vegetation per commune"],
  series_lst: ["Température de surface", "Surface temperature"],
  series_uhi: ["Intensité de l'îlot de chaleur", "Heat-island intensity"],
  series_uhi_zones: ["Intensité par maille", "Intensity per cell"],
  series_uhi_hotspots: ["Points chauds", "Hot spots"],
  series_landcover: ["Occupation du sol", "Land cover"],
};

export function t(key, ...args) {
  const entry = UI[key];
  const text = entry ? entry[lang === "fr" ? 0 : 1] : key;
  return text.replace(/\{(\d)\}/g, (_, i) => String(args[Number(i)] ?? ""));
}

// raw property name → [français, English, unit, kind]; kind: share (0..1 shown in %), int, text, date, bool
const FIELDS = {
  zone_id: ["Code", "Code", null, "text"],
  zone_name: ["Zone", "Zone", null, "text"],
  code: ["Code", "Code", null, "text"],
  nom: ["Nom", "Name", null, "text"],
  status: ["Statut", "Status", null, "status"],
  covered_fraction: ["Part couverte par l'image", "Share covered by the image", null, "share"],
  valid_fraction: ["Part de pixels valides", "Share of valid pixels", null, "share"],
  zone_area_m2: ["Surface de la zone", "Zone area", "m²"],
  observed_area_ha: ["Surface observée", "Observed area", "ha"],
  ndvi_mean: ["NDVI moyen", "Mean NDVI", null],
  ndvi_median: ["NDVI médian", "Median NDVI", null],
  ndvi_p10: ["NDVI 10e centile", "NDVI 10th percentile", null],
  ndvi_p90: ["NDVI 90e centile", "NDVI 90th percentile", null],
  dense_vegetation_share: ["Végétation dense", "Dense vegetation", null, "share"],
  sparse_vegetation_share: ["Végétation clairsemée", "Sparse vegetation", null, "share"],
  artificialised_m2: ["Artificialisé", "Artificialised", "m²"],
  renaturalised_m2: ["Renaturé", "Renaturalised", "m²"],
  net_m2: ["Solde net", "Net", "m²"],
  artificialised_ha: ["Artificialisé", "Artificialised", "ha"],
  renaturalised_ha: ["Renaturé", "Renaturalised", "ha"],
  net_ha: ["Solde net", "Net", "ha"],
  artificialised_ha_per_year: ["Artificialisé par an", "Artificialised per year", "ha/an"],
  net_ha_per_year: ["Solde net par an", "Net per year", "ha/an"],
  artificialised_m2_no_mmu: ["Artificialisé (sans seuil)", "Artificialised (no minimum unit)", "m²"],
  renaturalised_m2_no_mmu: ["Renaturé (sans seuil)", "Renaturalised (no minimum unit)", "m²"],
  net_m2_no_mmu: ["Solde net (sans seuil)", "Net (no minimum unit)", "m²"],
  artificialised_ha_no_mmu: ["Artificialisé (ha, sans seuil)", "Artificialised (ha, no minimum unit)", "ha"],
  renaturalised_ha_no_mmu: ["Renaturé (ha, sans seuil)", "Renaturalised (ha, no minimum unit)", "ha"],
  net_ha_no_mmu: ["Solde net (ha, sans seuil)", "Net (ha, no minimum unit)", "ha"],
  artificialised_ha_per_year_no_mmu: ["Artificialisé par an (sans seuil)", "Artificialised per year (no minimum unit)",
    "ha/an"],
  net_ha_per_year_no_mmu: ["Solde net par an (sans seuil)", "Net per year (no minimum unit)", "ha/an"],
  period: ["Période", "Period", null, "text"],
  mmu_building_m2: ["Seuil de surface, bâti", "Minimum unit, buildings", "m²"],
  mmu_other_m2: ["Seuil de surface, autres", "Minimum unit, other", "m²"],
  consumption_ha_2011_2021: ["Consommation de référence 2011–2021", "Reference consumption 2011–2021", "ha"],
  reference_ha_per_year_2011_2021: ["Rythme de référence 2011–2021", "Reference rate 2011–2021", "ha/an"],
  target_ha_per_year_2021_2031: ["Objectif 2021–2031 (−50 %)", "Target 2021–2031 (−50 %)", "ha/an"],
  measured_vs_target: ["Mesuré / objectif", "Measured / target", null],
  illustrative: ["Référence illustrative", "Illustrative reference", null, "bool"],
  variable: ["Grandeur", "Variable", null, "text"],
  mean: ["Intensité moyenne", "Mean intensity", "°C"],
  median: ["Intensité médiane", "Median intensity", "°C"],
  p10: ["10e centile", "10th percentile", "°C"],
  p90: ["90e centile", "90th percentile", "°C"],
  min: ["Minimum", "Minimum", "°C"],
  max: ["Maximum", "Maximum", "°C"],
  site_id: ["Identifiant", "Identifier", null, "text"],
  first_seen: ["Vu la première fois", "First seen", null, "date"],
  last_seen: ["Vu la dernière fois", "Last seen", null, "date"],
  pass_date: ["Passage", "Pass", null, "date"],
  area_m2: ["Surface", "Area", "m²"],
  area_ha: ["Surface", "Area", "ha"],
  volume_m3: ["Volume", "Volume", "m³"],
  height_max_m: ["Hauteur maximale", "Maximum height", "m"],
  height_mean_m: ["Hauteur moyenne", "Mean height", "m"],
  mean_confidence: ["Confiance moyenne", "Mean confidence", null, "share"],
  max_confidence: ["Confiance maximale", "Maximum confidence", null, "share"],
  commune_name: ["Commune", "Municipality", null, "text"],
  commune_code: ["Code INSEE", "INSEE code", null, "text"],
  candidate: ["Candidat à vérifier", "Candidate to check", null, "bool"],
  note: ["Remarque", "Note", null, "text"],
  volume_note: ["Remarque sur le volume", "Volume note", null, "text"],
  previous_area_m2: ["Surface au passage précédent", "Area at the previous pass", "m²"],
  area_ratio: ["Rapport de surface", "Area ratio", null],
  observed_share: ["Part observée à ce passage", "Share observed by this pass", null, "share"],
  centroid_lat: ["Latitude", "Latitude", "°"],
  centroid_lon: ["Longitude", "Longitude", "°"],
  feedback: ["Avis", "Feedback", null, "text"],
};

// fields of zones and sites shown in panels (others: technical, left to the download)
export const HIDDEN_FIELDS = new Set(["detection_id", "source_kind", "layer_kind", "source_layer", "match",
  "track_note", "area_ha", "centroid_x_l93", "centroid_y_l93", "area_history", "status_history", "centroid_lat",
  "centroid_lon"]);

export function fieldLabel(key) {
  const entry = FIELDS[key];
  if (entry) return entry[lang === "fr" ? 0 : 1];
  const dist = /^dist_(.+)_m$/.exec(key);
  if (dist) return lang === "fr" ? `Distance à ${dist[1]}` : `Distance to ${dist[1]}`;
  const nearest = /^nearest_(.+)$/.exec(key);
  if (nearest) return lang === "fr" ? `${nearest[1]} le plus proche` : `Nearest ${nearest[1]}`;
  const inside = /^inside_(.+)$/.exec(key);
  if (inside) return lang === "fr" ? `Dans ${inside[1]}` : `Inside ${inside[1]}`;
  return key.replace(/_/g, " ");
}

export function fieldUnit(key) {
  if (/^dist_.+_m$/.test(key)) return "m";
  return FIELDS[key] ? FIELDS[key][2] : null;
}

export function unitText(unit) {
  if (!unit) return "";
  const known = { celsius: "°C", degC: "°C", m2: "m²", m3: "m³", "ha/an": lang === "fr" ? "ha/an" : "ha/yr",
    NDVI: "", share: "%", "hab.": lang === "fr" ? "hab." : "inh." };
  return unit in known ? known[unit] : unit;
}

export function formatNumber(value, digits = 2) {
  return new Intl.NumberFormat(lang === "fr" ? "fr-FR" : "en-GB", { maximumFractionDigits: digits }).format(value);
}

export function withUnit(text, unit) {
  const shown = unitText(unit);
  return shown ? `${text}\u00a0${shown}` : text;
}

export function formatDate(value) {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return new Intl.DateTimeFormat(lang === "fr" ? "fr-FR" : "en-GB", { dateStyle: "medium", timeZone: "UTC" })
    .format(date);
}

export function formatField(key, value) {
  if (value === null || value === undefined || (typeof value === "number" && !Number.isFinite(value))) {
    return t("no_data");
  }
  const kind = FIELDS[key] ? FIELDS[key][3] : undefined;
  if (kind === "share" && typeof value === "number") return `${formatNumber(value * 100, 1)}\u00a0%`;
  if (kind === "status") return statusLabel(value);
  if (kind === "date") return formatDate(value);
  if (typeof value === "boolean") return lang === "fr" ? (value ? "oui" : "non") : (value ? "yes" : "no");
  if (typeof value === "number") {
    const digits = Math.abs(value) >= 10000 ? 0 : Math.abs(value) >= 1 ? 2 : 3;
    return withUnit(formatNumber(value, digits), fieldUnit(key));
  }
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

export function statusLabel(status) {
  const key = `status_${status}`;
  return UI[key] ? t(key) : String(status);
}

// class names of the shipped classifications, in French
const CLASSES = {
  "cultivated land": "terres cultivées", forest: "forêt", grassland: "prairies", "shrubland": "landes, broussailles",
  water: "eau", wetlands: "zones humides", tundra: "toundra", "artificial surface": "surfaces artificielles",
  "artificial surfaces": "surfaces artificielles", bareland: "sol nu", "bare land": "sol nu",
  "snow and ice": "neige et glace", "stable, not artificial": "stable, non artificialisé",
  "stable, artificial": "stable, artificialisé", artificialised: "artificialisé", renaturalised: "renaturé",
  "below +2 °C": "moins de +2 °C", "+2 to +4 °C": "de +2 à +4 °C", "+4 to +6 °C": "de +4 à +6 °C",
  "above +6 °C": "plus de +6 °C", "+6 °C and above": "+6 °C et plus",
};

export function className(name) {
  if (lang === "en") return name;
  return CLASSES[name] || CLASSES[String(name).toLowerCase()] || name;
}
