"""Small, realistic synthetic inputs: a ViSP Level 1 dataset folder (spec-214-like frame headers,
tile-compressed frames, an L1 ASDF built with dkist/gwcs classes) and a results folder in the
science team's format. Used by the demo set-up at run time, by the tests and by the benchmark;
needs nothing beyond the runtime dependencies.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path

import asdf
import astropy.units as u
import gwcs
import numpy as np
from astropy.io import fits
from astropy.modeling import models as m
from astropy.table import Table
from astropy.time import Time
from dkist import Dataset
from dkist.io.dask.loaders import AstropyFITSLoader
from dkist.io.dask.striped_array import FileManager
from dkist.wcs.models import AsymmetricMapping, CoupledCompoundModel, varying_celestial_transform_from_tables
from gwcs import coordinate_frames as cf
from sunpy.coordinates import HeliographicStonyhurst, Helioprojective

from inversions.products.results import (
    BINNING_KEY,
    FIDUCIAL_ARM_KEY,
    FIT_FILE,
    ORIGINAL_FILE,
    QUANTITIES_FILE,
)
from inversions.products.spec import LINES, LOG_TAU_FIRST, LOG_TAU_STEP, STOKES

DEFAULT_START = datetime(2024, 4, 17, 20, 25, 26, 516000)
# Real arm order and lines (Na D, Fe I, Ca II), a few dozen wavelengths each.
DEFAULT_ARMS: tuple[tuple[int, int], ...] = ((9, 28), (23, 24), (4, 32))
ARM_LINE_WAVELENGTHS_NM = {1: 588.95095, 2: 630.15012, 3: 854.2091}
SPECTRAL_PIXELS = 4  # the L1 frames' wavelength axis: only headers are read, keep the data tiny
PLATE_SCALE_ARCSEC = 0.0298  # along the slit, per pixel
RASTER_STEP_ARCSEC = 0.0536
SPECTRAL_STEP_NM = 0.00128
SUN_EARTH_M = 1.5e11


def write_l1_dataset(
    folder: Path,
    dataset_id: str,
    *,
    frames: int,
    arm_id: int = 2,
    slit_pixels: int = 100,
    proposal_id: str = "pid_2_114",
    experiment_id: str = "eid_2_114",
    start: datetime = DEFAULT_START,
    cadence_s: float = 2.818,
    rotation_deg: float = 7.0,
    pointing_arcsec: tuple[float, float] = (-380.0, 510.0),
) -> list[Path]:
    """A ViSP dataset folder: I, Q, U, V frames for `frames` raster steps, and its L1 ASDF.

    `folder` is the dataset's own folder (``…/<proposalId>/<datasetId>/``). The slit is rotated by
    `rotation_deg` on the sky, so the PC matrix has off-diagonal terms. Returns the frame paths.
    """
    folder.mkdir(parents=True, exist_ok=True)
    wavelength = ARM_LINE_WAVELENGTHS_NM.get(arm_id, 630.15012)
    template = _frame_header(
        dataset_id, frames=frames, arm_id=arm_id, slit_pixels=slit_pixels, wavelength_nm=wavelength,
        proposal_id=proposal_id, experiment_id=experiment_id, rotation_deg=rotation_deg,
        pointing_arcsec=pointing_arcsec,
    )  # fmt: skip
    render = _frame_renderer(template, slit_pixels)
    paths: list[Path] = []
    headers: list[fits.Header] = []
    for step in range(frames):
        begin = start + timedelta(seconds=step * cadence_s)
        header = template.copy()
        _set_times(header, begin, exposure_s=cadence_s * 0.9)
        header["CRPIX3"] = header["CRPIX3A"] = frames / 2 - step + 1.0
        content = render(header)
        stamp = begin.strftime("%Y_%m_%dT%H_%M_%S_") + f"{begin.microsecond // 1000:03d}"
        for stokes in STOKES:
            path = folder / f"VISP_{stamp}_{round(wavelength * 1e5):08d}_{stokes}_{dataset_id}_L1.fits"
            path.write_bytes(content)
            paths.append(path)
            headers.append(header)
    _write_l1_asdf(folder, dataset_id, paths, headers, frames=frames, slit_pixels=slit_pixels)
    return paths


# The keys that differ between the frames of one dataset.
VARYING_KEYS = ("DATE-BEG", "DATE-END", "DATE-AVG", "TELAPSE", "CRPIX3", "CRPIX3A")


def _frame_renderer(template: fits.Header, slit_pixels: int) -> Callable[[fits.Header], bytes]:
    """Frame files from one compressed template, by rewriting its varying cards in place.

    Compressing and verifying a FITS file with astropy costs ~50 ms; the frames of one dataset
    differ only in a few fixed-width cards, so it is done once per dataset.
    """
    header = template.copy()
    _set_times(header, DEFAULT_START, exposure_s=1.0)
    header["CRPIX3"] = header["CRPIX3A"] = 1.0
    data = np.zeros((1, SPECTRAL_PIXELS, slit_pixels), dtype=np.float32)
    buffer = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data, header, compression_type="RICE_1")]).writeto(
        buffer
    )
    raw = buffer.getvalue()
    positions = {
        raw[offset : offset + 8].decode().strip(): offset
        for offset in range(0, len(raw), fits.Card.length)
        if raw[offset : offset + 8].decode(errors="replace").strip() in VARYING_KEYS
    }

    def render(frame_header: fits.Header) -> bytes:
        content = bytearray(raw)
        for key, offset in positions.items():
            card = fits.Card(key, frame_header[key], frame_header.comments[key])
            content[offset : offset + fits.Card.length] = card.image.encode()
        return bytes(content)

    return render


def _frame_header(
    dataset_id: str,
    *,
    frames: int,
    arm_id: int,
    slit_pixels: int,
    wavelength_nm: float,
    proposal_id: str,
    experiment_id: str,
    rotation_deg: float,
    pointing_arcsec: tuple[float, float],
) -> fits.Header:
    header = fits.Header()
    cards: list[tuple[str, object, str]] = [
        ("OBJECT", "sunspot", "Object observed"),
        ("INSTRUME", "VISP", "Instrument"),
        ("TELESCOP", "Daniel K. Inouye Solar Telescope", "Telescope"),
        ("OBSRVTRY", "Haleakala High Altitude Observatory Site", "Observatory"),
        ("NETWORK", "NSF-DKIST", "Network"),
        ("ORIGIN", "National Solar Observatory", "Origin"),
        ("TAZIMUTH", 121.7, "[deg] Raw mount azimuth"),
        ("ELEV_ANG", 48.2, "[deg] Raw mount elevation"),
        ("TELTRACK", "Standard Differential Rotation Tracking", "Tracking mode"),
        ("TELSCAN", "None", "Scanning mode of the telescope"),
        ("TTBLANGL", 12.5, "[deg] Coude table angle"),
        ("TTBLTRCK", "fixed angle on sun", "Table tracking"),
        ("DATEREF", "2024-04-17T00:00:00.000", "Reference date for time axes"),
        ("OBS_VR", -592.4, "[m/s] Observer radial velocity"),
        ("OBSGEO-X", -5466045.256, "[m] Observer location"),
        ("OBSGEO-Y", -2404388.737, "[m] Observer location"),
        ("OBSGEO-Z", 2242133.887, "[m] Observer location"),
        ("DKISTVER", "DKIST Fits Standard 214 v4.1.0", "FITS standard"),
        ("HEAD_URL", "https://docs.dkist.nso.edu/projects/data-products/en/v4.1.0", ""),
        ("OBSPR_ID", f"{experiment_id}_OP01", "OP id"),
        ("EXPER_ID", experiment_id, "Experiment id"),
        ("PROP_ID", proposal_id, "Proposal id"),
        ("DSP_ID", f"{experiment_id}_DSP_{arm_id:02d}", "DSP id"),
        ("IP_ID", f"{experiment_id}_IP01", "IP id"),
        ("HLSVERS", "Alakai_11", "High level software version"),
        ("NPROPOS", 1, "Number of proposals"),
        ("NEXPERS", 1, "Number of experiments"),
        ("PROPID01", proposal_id, "Proposal id"),
        ("EXPRID01", experiment_id, "Experiment id"),
        ("OCS_CTRL", "Auto", "Control mode of the OCS"),
        ("FIDO_CFG", "Spectropolarimetric mode", "FIDO"),
        ("DSHEALTH", "GOOD", "Worst health of the data set"),
        ("LIGHTLVL", 5132.7, "Light level"),
        ("ATMOS_R0", 0.082, "[m] Fried parameter"),
        ("AO_LOCK", True, "AO locked"),
        ("DSETID", dataset_id, "Dataset id"),
        ("VSPARMID", arm_id, "ViSP arm that generated the data"),
        ("VSPNUMST", 4, "Number of polarization states"),
        ("VSPSLTSS", RASTER_STEP_ARCSEC, "[arcsec] Raster step size"),
        ("LINEWAV", wavelength_nm, "[nm] Line wavelength"),
        ("WCSNAME", "Helioprojective-cartesian", "Name of the main WCS"),
        ("WCSNAMEA", "Equatorial equinox J2000", "Name of the alternate WCS"),
    ]
    for key, value, comment in cards:
        header[key] = (value, comment)
    theta = math.radians(rotation_deg)
    # Axes: 1 slit (latitude), 2 wavelength, 3 raster (longitude); rotated on the sky by theta.
    rotation = {
        (1, 1): math.cos(theta),
        (1, 3): -math.sin(theta),
        (3, 1): math.sin(theta),
        (3, 3): math.cos(theta),
    }
    scales = {1: PLATE_SCALE_ARCSEC, 3: RASTER_STEP_ARCSEC}
    lon, lat = pointing_arcsec
    for alt, (ctype_slit, ctype_raster), unit, factor, (crval_slit, crval_raster) in (
        ("", ("HPLT-TAN", "HPLN-TAN"), "arcsec", 1.0, (lat, lon)),
        ("A", ("DEC--TAN", "RA---TAN"), "deg", 1 / 3600, (10.42, 25.63)),
    ):
        for axis, ctype, cunit, crpix, crval, cdelt in (
            (1, ctype_slit, unit, slit_pixels / 2, crval_slit, PLATE_SCALE_ARCSEC * factor),
            (2, "AWAV", "nm", SPECTRAL_PIXELS / 2, wavelength_nm, SPECTRAL_STEP_NM),
            (3, ctype_raster, unit, frames / 2 + 1.0, crval_raster, RASTER_STEP_ARCSEC * factor),
        ):
            header[f"CTYPE{axis}{alt}"] = ctype
            header[f"CUNIT{axis}{alt}"] = cunit
            header[f"CRPIX{axis}{alt}"] = crpix
            header[f"CRVAL{axis}{alt}"] = crval
            header[f"CDELT{axis}{alt}"] = cdelt
        for row in (1, 2, 3):
            for column in (1, 2, 3):
                if row == 2 or column == 2:
                    value = 1.0 if row == column else 0.0
                else:  # a sky rotation expressed for unequal pixel scales
                    value = rotation[row, column] * scales[column] / scales[row]
                header[f"PC{row}_{column}{alt}"] = value
        header[f"LONPOLE{alt}"] = 180.0
    return header


def _set_times(header: fits.Header, begin: datetime, *, exposure_s: float) -> None:
    end = begin + timedelta(seconds=exposure_s)
    middle = begin + timedelta(seconds=exposure_s / 2)
    for key, moment in (("DATE-BEG", begin), ("DATE-END", end), ("DATE-AVG", middle)):
        header[key] = moment.isoformat(timespec="milliseconds")
    header["TELAPSE"] = exposure_s


def _write_l1_asdf(
    folder: Path,
    dataset_id: str,
    paths: list[Path],
    headers: list[fits.Header],
    *,
    frames: int,
    slit_pixels: int,
) -> Path:
    """The dataset ASDF, as dkist-inventory writes it: files [stokes, raster], gwcs over all pixels."""
    first = headers[0]
    fileuris = np.array([path.name for path in paths]).reshape(frames, len(STOKES)).T
    files = FileManager.from_parts(
        fileuris.tolist(), 1, "float32", (1, SPECTRAL_PIXELS, slit_pixels), loader=AstropyFITSLoader,
        basepath=folder,
    )  # fmt: skip
    wcs = _l1_gwcs(headers[:: len(STOKES)], slit_pixels=slit_pixels)
    table = Table(rows=[[str(header[key]) for key in ("DATE-BEG", "DATE-AVG")] for header in headers],
                  names=("DATE-BEG", "DATE-AVG"))  # fmt: skip
    inventory = {
        "datasetId": dataset_id,
        "instrumentName": "VISP",
        "primaryProposalId": first["PROP_ID"],
        "primaryExperimentId": first["EXPER_ID"],
        "frameCount": len(paths),
        "wavelengthMin": first["LINEWAV"] - 0.1,
        "wavelengthMax": first["LINEWAV"] + 0.1,
        "stokesParameters": list(STOKES),
    }
    dataset = Dataset(
        files._generate_array(), wcs=wcs, meta={"inventory": inventory, "headers": table}, unit=u.ct
    )
    dataset._file_manager = files
    stamp = datetime.fromisoformat(str(first["DATE-BEG"])).strftime("%Y%m%dT%H%M%S")
    path = folder / f"VISP_L1_{stamp}_{dataset_id}_metadata.asdf"
    asdf.AsdfFile({"dataset": dataset}).write_to(path)
    return path


def _l1_gwcs(step_headers: list[fits.Header], *, slit_pixels: int) -> gwcs.WCS:
    """Pixel (slit, wavelength, raster, stokes) -> (wavelength, lon, lat, time, stokes)."""
    first = step_headers[0]
    frames = len(step_headers)
    # Per raster step: CRPIX as the frame says, shifted so that raster pixel i is frame i's pixel 1.
    crpix = np.array([[h["CRPIX3"] - 1 + i, h["CRPIX1"] - 1] for i, h in enumerate(step_headers)]) * u.pix
    pc = np.array([[[h["PC3_3"], h["PC3_1"]], [h["PC1_3"], h["PC1_1"]]] for h in step_headers]) * u.pix
    crval = np.array([[h["CRVAL3"], h["CRVAL1"]] for h in step_headers]) * u.arcsec
    celestial = varying_celestial_transform_from_tables(
        crpix_table=crpix, cdelt=[first["CDELT3"], first["CDELT1"]] * u.arcsec / u.pix, pc_table=pc,
        crval_table=crval, lon_pole=180, slit=0,
    )  # fmt: skip
    # Inputs (slit, raster) -> (raster, slit): longitude is the raster axis.
    spatial = AsymmetricMapping(forward_mapping=[1, 0], backward_mapping=[0, 1]) | celestial
    times = Time([str(h["DATE-AVG"]) for h in step_headers])
    seconds = (times - times[0]).to(u.s)
    temporal = m.Tabular1D(
        np.arange(frames) * u.pix,
        seconds,
        method="linear",
        bounds_error=False,
        fill_value=np.nan,
        name="Temporal",
    )
    spatial_and_time = CoupledCompoundModel("&", spatial, temporal, shared_inputs=1)
    spectral = m.Linear1D(
        slope=first["CDELT2"] * u.nm / u.pix,
        intercept=(first["CRVAL2"] - (first["CRPIX2"] - 1) * first["CDELT2"]) * u.nm,
        name="Spectral",
    )
    stokes = m.Tabular1D(np.arange(4) * u.pix, np.arange(1, 5) * u.one, method="nearest", bounds_error=False)
    transform = m.Mapping((1, 0, 2, 3)) | spectral & spatial_and_time & stokes
    observer = HeliographicStonyhurst(0 * u.deg, -5.4 * u.deg, SUN_EARTH_M * u.m, obstime=times[frames // 2])
    output = cf.CompositeFrame(
        [
            cf.SpectralFrame(axes_order=(0,), unit=(u.nm,), axes_names=("wavelength",), name="wavelength"),
            cf.CelestialFrame(
                axes_order=(1, 2),
                reference_frame=Helioprojective(obstime=times[frames // 2], observer=observer),
                unit=(u.arcsec, u.arcsec),
                axes_names=("helioprojective longitude", "helioprojective latitude"),
                axis_physical_types=("custom:pos.helioprojective.lon", "custom:pos.helioprojective.lat"),
                name="helioprojective",
            ),
            cf.TemporalFrame(
                axes_order=(3,), reference_frame=times[0], unit=(u.s,), axes_names=("time",), name="temporal"
            ),
            cf.StokesFrame(axes_order=(4,), name="stokes"),
        ]
    )
    pixel = cf.CoordinateFrame(
        naxes=4, axes_type=["PIXEL"] * 4, axes_order=range(4), unit=[u.pix] * 4,
        axes_names=("slit position", "wavelength", "raster position", "stokes"), name="pixel",
    )  # fmt: skip
    wcs = gwcs.WCS(forward_transform=transform, input_frame=pixel, output_frame=output)
    wcs.pixel_shape = (slit_pixels, SPECTRAL_PIXELS, frames, 4)
    return wcs


def write_results(
    folder: Path,
    *,
    frames: int,
    slit_bins: int,
    depths: int = 15,
    arms: Sequence[tuple[int, int]] = DEFAULT_ARMS,
    binning: int = 5,
    fiducial_arm: int = 2,
    seed: int = 0,
) -> list[Path]:
    """The three result files of an inversion of `frames` raster steps x `slit_bins` slit bins.

    `arms` are (line id, wavelengths) in the order of the concatenated wavelength axis; the
    sunspot, its field and flows are smooth, physically plausible shapes.
    """
    folder.mkdir(parents=True, exist_ok=True)
    random = np.random.default_rng(seed)
    log_tau = LOG_TAU_FIRST + LOG_TAU_STEP * np.arange(depths, dtype=np.float32)
    spot = _sunspot(frames, slit_bins)
    quantities = _quantities(log_tau, spot)
    offsets, line_ids = _wavelength_axis(arms)
    fit = _profiles(offsets, line_ids, quantities, spot)
    original = fit + random.normal(0, 0.004, fit.shape).astype(np.float32)
    paths = [folder / QUANTITIES_FILE, folder / FIT_FILE, folder / ORIGINAL_FILE]
    fits.PrimaryHDU(quantities).writeto(paths[0], overwrite=True)
    for path, profiles in ((paths[1], fit), (paths[2], original)):
        primary = fits.PrimaryHDU(profiles)
        primary.header[BINNING_KEY] = (binning, "L1 slit pixels per slit bin")
        primary.header[FIDUCIAL_ARM_KEY] = (fiducial_arm, "VSPARMID the slit positions refer to")
        fits.HDUList(
            [primary, fits.ImageHDU(offsets, name="WAVELENGTH"), fits.ImageHDU(line_ids, name="LINE_ID")]
        ).writeto(path, overwrite=True)
    return paths


def _sunspot(frames: int, slit_bins: int) -> dict[str, np.ndarray]:
    """Normalised distance to the spot centre and position angle, on the [frameY, slitX] grid."""
    y, x = np.meshgrid(np.linspace(-1, 1, frames), np.linspace(-1, 1, slit_bins), indexing="ij")
    return {"radius": np.hypot(x, y) / 0.6, "angle": np.degrees(np.arctan2(y, x)), "x": x, "y": y}


def _quantities(log_tau: np.ndarray, spot: dict[str, np.ndarray]) -> np.ndarray:
    """[11, depth, frameY, slitX] in the inversion code's units (K, dyn cm^-2, cm/s, G, deg, km, g cm^-3)."""
    tau = log_tau[:, None, None]
    radius = spot["radius"][None]
    umbra = np.exp(-(radius**2))
    temperature = 4400 + 1900 * np.exp(0.8 * tau) - 1500 * umbra * np.exp(0.3 * tau)
    field = (2800 * umbra + 60) * (1 + 0.15 * tau)
    inclination = np.clip(radius, 0, 1.2) * 75 + 0 * tau
    azimuth = spot["angle"][None] + 0 * tau  # in (-180, 180]: the conversion takes it mod 360
    granulation = np.sin(6 * spot["x"]) * np.cos(5 * spot["y"])
    velocity = (
        1.5e5 * granulation * (1 - umbra) + 2e5 * (radius > 0.8) * np.exp(-((radius - 1.1) ** 2) / 0.05)
    ) * (0.8 + 0.2 * np.exp(0.5 * tau))
    values = [
        np.broadcast_to(tau, temperature.shape),
        temperature,
        10 * np.exp(2.3 * tau) * (1 - 0.3 * umbra),  # electron pressure
        np.full(temperature.shape, 1.0e5),  # microturbulence
        field,
        velocity,
        inclination,
        azimuth,
        -110 * tau + 0 * radius,  # geometric height
        1.2e5 * np.exp(2.0 * tau) * (1 - 0.2 * umbra),  # gas pressure
        3e-7 * np.exp(1.8 * tau) + 0 * radius,  # density
    ]
    return np.stack([np.broadcast_to(value, temperature.shape) for value in values]).astype(np.float32)


def _wavelength_axis(arms: Sequence[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (mÅ, from each line's reference) and line ids along the concatenated axis."""
    offsets, line_ids = [], []
    for line_id, count in arms:
        if line_id not in LINES:
            raise ValueError(f"Unknown line id {line_id}.")
        step_mA = 12.8
        offsets.append((np.arange(count) - 0.45 * count) * step_mA)
        line_ids.append(np.full(count, line_id))
    return np.concatenate(offsets).astype(np.float32), np.concatenate(line_ids).astype(np.float32)


def _profiles(
    offsets: np.ndarray, line_ids: np.ndarray, quantities: np.ndarray, spot: dict[str, np.ndarray]
) -> np.ndarray:
    """[4, wavelength, frameY, slitX]: an absorption line split by the field (weak-field shapes)."""
    node = quantities.shape[1] // 2  # the middle of the atmosphere forms the line
    field = quantities[4, node][None] / 3000
    inclination = np.radians(quantities[6, node])[None]
    azimuth = np.radians(quantities[7, node])[None]
    shift = quantities[5, node][None] / 1e5 * 20  # mÅ per km/s, roughly
    width = np.where(line_ids == 23, 80.0, 150.0)[:, None, None]
    depth = np.where(line_ids == 23, 0.65, 0.8)[:, None, None]
    delta = (offsets[:, None, None] - shift) / width
    core = np.exp(-(delta**2))
    derivative = -2 * delta * core
    second = (4 * delta**2 - 2) * core
    intensity = 1 - depth * core * (1 - 0.3 * field)
    linear = 0.05 * field**2 * np.sin(inclination) ** 2 * second
    stokes_q = linear * np.cos(2 * azimuth)
    stokes_u = linear * np.sin(2 * azimuth)
    stokes_v = 0.15 * field * np.cos(inclination) * derivative
    return np.stack([intensity, stokes_q, stokes_u, stokes_v]).astype(np.float32)
