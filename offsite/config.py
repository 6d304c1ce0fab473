"""Settings and registry loading: YAML files whose errors name the file, line and field."""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args

import yaml
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from cases.calendar import HolidayFile, WorkCalendar, deadline
from cases.calendar import problems as calendar_problems
from cases.party import HttpOwners, OwnerFile, OwnerSource, RegistryOwners
from events import ConfigError, Registry
from events.clock import Clock, fixed_clock, wall_clock
from events.models import LeadKind
from events.registry import Permit, Vehicle
from events.water import WaterRegistry
from ingest.intake import GatewaySettings
from ingest.waterways import problems as waterway_problems
from rules.baseline import Baseline, version_problems
from rules.baseline import problems as baseline_problems
from sinks.dispatch import Squads
from sinks.dispatch import problems as squad_problems
from sinks.lifecycle import Policy
from sinks.outbound import FileDrop, HttpPost, Outbound

M = TypeVar("M", bound=BaseModel)


def _line_of(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """1-based line of the YAML node at ``loc``, or of the deepest ancestor that exists."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            node = node.value[part] if part < len(node.value) else None
        else:
            node = None
        if node is None:
            break
        line = node.start_mark.line + 1
    return line


Check = Callable[[Any], list[tuple[tuple[str | int, ...], str]]]


def load_yaml(
    path: Path, model: type[M], overrides: dict[str, Any] | None = None, check: Check | None = None
) -> M:
    """Parse ``path`` into ``model``; any problem raises ConfigError with file, line and field.
    ``check`` finds what the schema cannot see, as (location, message) pairs."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), None, "-", f"cannot read: {exc.strerror}") from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text) or {}
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: a day such as 2027-13-01
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(str(path), line, "-", f"not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(str(path), 1, "-", "the file must hold a mapping")
    data.update(overrides or {})
    try:
        value = model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        field = ".".join(str(p) for p in loc) or "-"
        raise ConfigError(str(path), _line_of(node, loc), field, err["msg"]) from exc
    for loc, message in (check(value) if check else [])[:1]:
        raise ConfigError(str(path), _line_of(node, loc), ".".join(map(str, loc)), message)
    return value


def load_waterways(path: Path) -> WaterRegistry:
    """The waterway registry (configs/waterways.yaml); the first problem raises ConfigError."""
    return load_yaml(path, WaterRegistry, check=waterway_problems)


def load_squads(
    path: Path, registry: Registry | None = None, waterways: WaterRegistry | None = None
) -> Squads:
    """The squads and dispatch rules (configs/squads.yaml): every place of an area must be in
    the registries given; the first problem raises ConfigError."""
    places: set[str] | None = None
    if registry is not None or waterways is not None:
        places = {s.id for s in registry.sites} if registry is not None else set()
        if waterways is not None:
            places |= {p.id for p in waterways.checkpoints} | {p.id for p in waterways.sections}
            places |= {z.id for z in waterways.controlled_sections}
            places |= {z.id for z in waterways.no_dredging_zones}
    kinds = get_args(LeadKind)
    known = frozenset(places) if places is not None else None
    return load_yaml(path, Squads, check=lambda s: squad_problems(s, known, kinds))


GEOMETRIES = {"Point", "LineString", "MultiLineString", "Polygon", "MultiPolygon"}


def load_map(path: Path) -> dict[str, Any]:
    """The agency's roads and waterways as GeoJSON (configs/map.geojson): a FeatureCollection
    of named features with WGS 84 coordinates; the first problem raises ConfigError."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(str(path), None, "-", f"cannot read: {exc.strerror}") from exc
    except ValueError as exc:
        raise ConfigError(
            str(path), getattr(exc, "lineno", None), "-", f"not valid JSON: {exc}"
        ) from exc
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise ConfigError(str(path), 1, "type", "the file must hold a GeoJSON FeatureCollection")
    for i, f in enumerate(doc.get("features") or []):
        geom = f.get("geometry") if isinstance(f, dict) else None
        if not isinstance(geom, dict) or geom.get("type") not in GEOMETRIES:
            raise ConfigError(str(path), None, f"features.{i}.geometry",
                              f"must be one of {', '.join(sorted(GEOMETRIES))}")  # fmt: skip
        if not str((f.get("properties") or {}).get("name") or ""):
            raise ConfigError(str(path), None, f"features.{i}.properties.name", "is required")
        for lon, lat in _positions(geom["coordinates"]):
            if not (-180 <= lon <= 180 and -90 <= lat <= 90):
                raise ConfigError(str(path), None, f"features.{i}.geometry.coordinates",
                                  f"[{lon}, {lat}] is no [lon, lat] in WGS 84")  # fmt: skip
    return doc


def _positions(coords: Any) -> list[tuple[float, float]]:
    if coords and isinstance(coords[0], int | float):
        return [(float(coords[0]), float(coords[1]))]
    return [p for c in coords for p in _positions(c)]


def load_calendar(path: Path) -> WorkCalendar:
    """The working-day calendar: the package's years and the agency's (configs/holidays.yaml)."""
    return WorkCalendar(load_yaml(path, HolidayFile, check=calendar_problems).years)


def load_owners(path: Path) -> RegistryOwners:
    """The vehicle-owner registry (configs/owners.yaml): the party of a case at 立案."""
    return RegistryOwners(load_yaml(path, OwnerFile).owners)


class OwnersSettings(BaseModel):
    """Where the party of a case comes from at 立案 (cases/party.py): the registry file, or a
    provincial vehicle database over HTTP (README, "The vehicle-owner source over HTTP")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Literal["file", "http", "none"] = "file"
    file: Path = Path("configs/owners.yaml")  # source: file
    url: HttpUrl | None = None  # source: http
    token: SecretStr | None = None  # source: http; sent as Authorization: Bearer
    timeout_s: float = Field(default=5.0, gt=0, le=60)

    @model_validator(mode="after")
    def _http_complete(self) -> OwnersSettings:
        if self.source == "http" and (self.url is None or not self.token):
            raise ValueError("source http needs url and token")
        return self

    def fleets(self) -> dict[str, int]:
        """The companies' fleet sizes (owners file ``fleets``); none from an HTTP source."""
        if self.source == "file" and self.file.is_file():
            return load_yaml(self.file, OwnerFile).fleets
        return {}

    def load(self) -> OwnerSource | None:
        if self.source == "file":
            return load_owners(self.file)
        if self.source == "http" and self.url is not None and self.token is not None:
            return HttpOwners(str(self.url), self.token.get_secret_value(), self.timeout_s)
        return None


class ChaogaoSettings(BaseModel):
    """``chaogao:`` — where 抄告 records go (cases/chaogao.py, sinks/outbound.py): a folder
    another system collects from (the demo's), or HTTP POST to the platform, signed with
    ``secret`` (HMAC-SHA256, the header X-Offsite-Signature)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    transport: Literal["file", "http", "none"] = "file"
    dir: Path | None = None  # transport file; unset: <var_dir>/outbox
    url: HttpUrl | None = None  # transport http
    secret: SecretStr | None = None  # transport http
    timeout_s: float = Field(default=10.0, gt=0, le=120)

    @model_validator(mode="after")
    def _http_complete(self) -> ChaogaoSettings:
        if self.transport == "http" and (self.url is None or not self.secret):
            raise ValueError("transport http needs url and secret")
        return self

    def outbound(self, var_dir: Path) -> Outbound | None:
        if self.transport == "file":
            return FileDrop(self.dir or var_dir / "outbox")
        if self.transport == "http" and self.url is not None and self.secret is not None:
            return HttpPost(str(self.url), self.secret.get_secret_value(), self.timeout_s)
        return None


def load_baseline(path: Path, jurisdiction: str | None = None) -> tuple[Baseline, str]:
    """A discretion baseline and the SHA-256 of its file, which every decision records. With
    ``jurisdiction``, it is to decide real cases there: it must be that jurisdiction's, and law,
    not an example."""

    def check(b: Baseline) -> list[tuple[tuple[str | int, ...], str]]:
        found = baseline_problems(b)
        if jurisdiction is not None and b.jurisdiction != jurisdiction:
            found.append(
                (("jurisdiction",), f"is {b.jurisdiction!r}, configured for {jurisdiction!r}")
            )
        if jurisdiction is not None and b.status != "law":
            found.append((("status",), f"is {b.status!r}: an example must not decide real cases"))
        return found

    baseline = load_yaml(path, Baseline, check=check)
    return baseline, hashlib.sha256(path.read_bytes()).hexdigest()


class _Vehicles(BaseModel):
    model_config = ConfigDict(extra="forbid")

    vehicles: list[Vehicle]


class _Permits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    permits: list[Permit]


def load_registry(
    path: Path, vehicles: Path | None = None, permits: Path | None = None
) -> Registry:
    """Sites and devices from ``path``; with ``vehicles`` and ``permits``, the agency's vehicle
    records and over-limit transport permits too (a permits file that does not exist: none)."""
    registry = load_yaml(path, Registry, check=Registry.problems)
    extra: dict[str, Any] = {}
    if vehicles is not None:
        extra["vehicles"] = load_yaml(vehicles, _Vehicles).vehicles
    if permits is not None and permits.exists():
        extra["permits"] = load_yaml(permits, _Permits).permits
    if not extra:
        return registry
    try:
        return Registry.model_validate({**registry.model_dump(), **extra})
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ConfigError(str(permits or vehicles), None, "-", err["msg"]) from exc


Baselines = dict[str, list[tuple[Baseline, str]]]


def load_baselines(files: Mapping[str, Path | list[Path]]) -> Baselines:
    """Each jurisdiction's baseline versions, for deciding real cases (see :func:`load_baseline`);
    the versions of one jurisdiction must not be in force on the same day."""
    out: Baselines = {}
    for jurisdiction, paths in files.items():
        paths = paths if isinstance(paths, list) else [paths]
        versions = [load_baseline(path, jurisdiction) for path in paths]
        for i, loc, message in version_problems([b for b, _ in versions]):
            raise ConfigError(str(paths[i]), line_in(paths[i], loc), ".".join(map(str, loc)),
                              message)  # fmt: skip
        out[jurisdiction] = versions
    return out


def baseline_files(files: Mapping[str, Path | list[Path]]) -> list[Path]:
    return [p for paths in files.values() for p in (paths if isinstance(paths, list) else [paths])]


def check_jurisdictions(path: Path, registry: Registry, baselines: Baselines) -> None:
    """Every site's jurisdiction has a baseline: else start-up stops, naming the site's line."""
    for i, site in enumerate(registry.sites):
        if site.jurisdiction not in baselines:
            loc: tuple[str | int, ...] = ("sites", i, "jurisdiction")
            raise ConfigError(str(path), line_in(path, loc), f"sites.{i}.jurisdiction",
                              f"site {site.id}: no baseline configured for jurisdiction "
                              f"{site.jurisdiction!r} (configured: {', '.join(sorted(baselines))})")  # fmt: skip


def line_in(path: Path, loc: tuple[str | int, ...]) -> int | None:
    """The line of ``loc`` in the YAML file at ``path`` (or of its deepest ancestor)."""
    try:
        return _line_of(yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader), loc)
    except (OSError, yaml.YAMLError):
        return None


class KafkaSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    bootstrap: str | None = None  # None: the embedded broker recorded by `services up`
    partitions: int = Field(default=3, ge=1)
    # of the topics offsite creates: 1 and 1 on one node; 3 and 2 on a three-broker cluster, so
    # that an acknowledged write (acks=all) is on two brokers and one may fail
    replication_factor: int = Field(default=1, ge=1)
    min_insync_replicas: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _insync_within_replicas(self) -> KafkaSettings:
        if self.min_insync_replicas > self.replication_factor:
            raise ValueError(
                f"min_insync_replicas ({self.min_insync_replicas}) is more than "
                f"replication_factor ({self.replication_factor}): no write could be acknowledged"
            )
        return self


class DatabaseSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    url: SecretStr | None = None  # None: the embedded PostgreSQL recorded by `services up`


class PipelineSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    topic_prefix: str = ""
    group_prefix: str = "offsite"
    match_window_s: float = Field(default=1.0, gt=0, le=60)
    min_plate_confidence: float = Field(default=0.9, ge=0, le=1)
    verify_plates: bool = True  # a second read of each enforceable plate by OCR
    # the name on a vessel's hull read by OCR from a capture's image, when the camera sent none;
    # a read below the confidence is no hull name (never a mismatch)
    read_hulls: bool = True
    min_hull_confidence: float = Field(default=0.8, ge=0, le=1)
    # two vehicles closer than this on the sensors are not weighed separately (tailgating)
    min_gap_s: float = Field(default=1.0, ge=0, le=30)
    # a pass dated this long after the broker received it has a device clock fault: review
    max_clock_ahead_s: float = Field(default=300, gt=0)
    batch_max: int = Field(default=2000, ge=1)
    idle_flush_s: float = Field(default=1.0, gt=0)
    # `run --until-idle`, the demo and the tests give up after this long, naming what is left
    drain_timeout_s: float = Field(default=1800, gt=0)
    # /metrics (Prometheus), /healthz and /readyz of each `offsite run` process; port 0: none
    metrics_port: int = Field(default=9108, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    # device health: silent longer than this (a device without expected_interval_s), a
    # certificate ending within this many days, a clock this far off the broker's time
    device_silent_after_s: float = Field(default=900, gt=0)
    certificate_warning_days: int = Field(default=30, ge=0)
    max_clock_skew_s: float = Field(default=300, gt=0)
    # decide as if it were this moment instead of the wall clock: a replay of a past period,
    # the tests. Art. 36's two years, certificates and permits are judged at it. Unset in
    # live use.
    as_of: AwareDatetime | None = None

    def clock(self) -> Clock:
        return wall_clock if self.as_of is None else fixed_clock(self.as_of)


class EvidenceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    agency: str = "（请在 configs/offsite.yaml 的 evidence.agency 填写执法机关名称）"
    key: Path = Path("var/keys/evidence.pem")  # Ed25519 private key: `offsite keys create`
    dir: Path = Path("var/evidence")  # one package per case: <dir>/<case_id>/
    # the agency's published signing keys (公示): `keys create` adds to it, `evidence verify`
    # trusts a package only when one of them signed it
    keyring: Path = Path("var/keys/keyring.yaml")
    # the key and X.509 certificate that sign the agency's PDF documents (cases/sealing.py): a
    # real agency gives the certificate its CA issued; when neither file exists, the console's
    # first start makes a key and a self-signed certificate naming the agency here
    document_key: Path = Path("var/keys/documents.pem")
    document_cert: Path = Path("var/keys/documents.crt")


class ConsoleSettings(BaseModel):
    """``console:`` — `offsite console` and the case lifecycle's policy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # served over TLS, directly or behind a proxy: Secure cookies and HSTS; unset: when
    # public_url is https
    secure_cookies: bool | None = None
    # the public address of the party's page as notices print it (e.g. https://zf.example.gov.cn);
    # required when the console listens on other than localhost; unset: http://host:port
    public_url: HttpUrl | None = None

    def tls(self) -> bool:
        if self.secure_cookies is not None:
            return self.secure_cookies
        return self.public_url is not None and self.public_url.scheme == "https"

    # the agency's catalogue of major decisions (重大执法决定): 法制审核 before the notice
    major_fine_cny_at_least: int | None = 20_000
    major_violation_codes: frozenset[str] = frozenset()
    statement_days: int = Field(default=15, ge=1)
    # 较大数额罚款 (the province's amounts, per party kind: review B4): from this fine the party
    # may ask for a hearing. Default: Hunan's (公民 1,000, 法人或其他组织 20,000 yuan, a Hunan
    # provincial document citing 《湖南省行政程序规定》; its current validity unverified)
    hearing_fine_cny_at_least: int | None = 1_000
    hearing_fine_cny_at_least_organization: int | None = 20_000
    # the years of the working-day calendar the agency adds (cases/calendar.py)
    holidays: Path = Path("configs/holidays.yaml")
    # the agency's 非税收入 payment code printed on its decisions (罚缴分离; cases/payments.py)
    payment_code: str = ""
    # seconds between the console's dispatch sweeps (the rules' dispatch, escalation of overdue
    # tasks; issue #30), run with no page open; several consoles sweep one at a time
    dispatch_sweep_s: float = Field(default=30, gt=0, le=3600)
    # the HMAC-SHA256 key the bank signs its payment callbacks with (POST /v1/payments);
    # unset: the callback is off
    payment_secret: SecretStr | None = None
    # the agency's code in its documents' numbers (e.g. 湘交执超通) and where the party turns
    # for 陈述、申辩 and 听证 (address, telephone), printed on the notice (review D.7, D.11)
    notice_prefix: str = "超限"
    # the agency's code in its 行政处罚决定书 numbers (e.g. 湘交执超罚); blank: notice_prefix + 罚
    decision_prefix: str = ""
    agency_contact: str = ""
    # credit (cases/credit.py): the province allows 承诺即修复 (信用修复 on the party's signed
    # commitment once the fine is paid; else an officer decides), and seconds between the
    # console's credit sweeps (drafts, listings, removals due today)
    credit_repair_on_commitment: bool = False
    credit_sweep_s: float = Field(default=3600, gt=0, le=86400)
    # the calendar years of weighings (the statistics' 检测车辆数) kept: the current year and the
    # ones before it (cases.statistics.WEIGHINGS_YEARS says why 3); the console deletes older
    # ones on its dispatch sweep's clock; unset (null): kept for ever
    weighings_keep_years: int | None = Field(default=3, ge=1, le=100)
    # the waterway offences this agency fines (its 权责清单: the 海事管理机构's penalties the
    # province gave the transport agency); the others are transferred (review B11). Empty by
    # default: whether an agency holds that power is a fact of its province, never assumed
    water_fine_codes: frozenset[Literal["water.overdraught", "water.signal"]] = frozenset()

    def policy(self) -> Policy:
        """The lifecycle's policy; loads the working-day calendar (a bad file stops here)."""
        return Policy(major_fine_cny_at_least=self.major_fine_cny_at_least,
                      major_violation_codes=self.major_violation_codes,
                      statement_days=self.statement_days,
                      hearing_fine_cny_at_least=self.hearing_fine_cny_at_least,
                      hearing_fine_cny_at_least_organization=(
                          self.hearing_fine_cny_at_least_organization),
                      notice_prefix=self.notice_prefix, decision_prefix=self.decision_prefix,
                      agency_contact=self.agency_contact,
                      water_fine_codes=frozenset(self.water_fine_codes),
                      deadline=functools.partial(deadline, load_calendar(self.holidays)))  # fmt: skip


class Settings(BaseSettings):
    """One frozen settings object: configs/offsite.yaml, overridden by OFFSITE_* variables."""

    model_config = SettingsConfigDict(
        env_prefix="OFFSITE_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    kafka: KafkaSettings = KafkaSettings()
    database: DatabaseSettings = DatabaseSettings()
    pipeline: PipelineSettings = PipelineSettings()
    evidence: EvidenceSettings = EvidenceSettings()
    gateway: GatewaySettings = GatewaySettings()  # `offsite ingest serve` and `watch`
    console: ConsoleSettings = ConsoleSettings()
    log_format: Literal["json", "text"] = "json"  # json: one object per line, for a collector
    registry: Path = Path("configs/sites.yaml")
    vehicles: Path = Path("configs/vehicles.yaml")
    # jurisdiction → baseline file; a site's jurisdiction (sites.yaml) picks its baseline
    # (a list of files: its versions, each in force from its effective_from)
    baselines: dict[str, Path | list[Path]] = {"national": Path("configs/baselines/national.yaml")}
    permits: Path | None = Path("configs/permits.yaml")
    waterways: Path = Path("configs/waterways.yaml")  # receivers, vessels, checkpoints, zones
    squads: Path = Path("configs/squads.yaml")  # squads, their areas and people; dispatch rules
    map: Path = Path("configs/map.geojson")  # roads and waterways under the command center's map
    owners: OwnersSettings = OwnersSettings()  # vehicle owners: the party at 立案
    chaogao: ChaogaoSettings = ChaogaoSettings()  # where 抄告 records are sent
    var_dir: Path = Path("var")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return env_settings, init_settings


def registry_of(settings: Settings) -> Registry:
    """The registry the settings name: sites and devices, vehicles, permits."""
    return load_registry(settings.registry, settings.vehicles, settings.permits)


def load_settings(path: Path | None = None) -> Settings:
    """Settings from ``path`` (default: $OFFSITE_CONFIG or configs/offsite.yaml) and env."""
    path = path or Path(os.environ.get("OFFSITE_CONFIG", "configs/offsite.yaml"))
    if not path.exists():
        return _env_only(path)
    return load_yaml(path, Settings)


def _env_only(path: Path) -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise ConfigError("environment", None, field, err["msg"]) from exc
