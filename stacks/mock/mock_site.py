#!/usr/bin/python3
"""mock_site.py - a mock remote site for SIREN: synthetic studies with
planted PHI, sent over DICOM-TLS with the site's own certificate.

  mock_site.py generate OUTDIR [--studies N] [--seed S]
      writes N studies (a CT series of 3 images and an MR image each)
      as Part 10 files, and OUTDIR/planted.json: every identifying value
      planted in them and their original UIDs, which must not reach the
      archive.
  mock_site.py send DIR...
      sends the .dcm files under each DIR with DCMTK's storescu over TLS;
      exit status 0 only if every file was acknowledged with Success.
  mock_site.py loop
      what the mock stack runs: generate a batch, send it, wait, again.

Where the gateway is and who the site is come from the environment
(command-line options override them):

  MOCK_GATEWAY_HOST, MOCK_GATEWAY_PORT   the gateway's DICOM-TLS endpoint
                                         (2762)
  MOCK_SITE_AET, MOCK_CALLED_AET         calling and called AE titles
                                         (SITEA, SIREN)
  MOCK_TLS_KEY, MOCK_TLS_CHAIN           the site's key and certificate
                                         chain (/run/secrets/mock-site.key,
                                         /run/secrets/mock-site-chain.pem)
  MOCK_TLS_CA                            the CA the gateway's certificate
                                         chains to (/run/secrets/
                                         mock-registry-ca.pem)
  MOCK_STUDIES, MOCK_INTERVAL_S          studies per batch (2), seconds
                                         between batches (600)

Every value is synthetic: the names, IDs and addresses are made up and
carry the marker "PHI" or "Phi" so that a leak is easy to find.
"""

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
SIDE = 16
STORESCU_TIMEOUT_S = 300

FIRST_NAMES = ("Phiona", "Phineas", "Philippa", "Phileas", "Phoebe")
LAST_NAMES = ("Mockwell", "Fakestone", "Testworth", "Samplefield")
PRIVATE_CREATOR = "MOCKSITE PHI"


def setting(name, default):
    return os.environ.get(name, default)


def patient(rng, number):
    """One synthetic patient: every value a leak would show."""
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    return {
        "PatientName": f"{last}^{first}",
        "PatientID": f"MOCK-PHI-{number:04d}",
        "OtherPatientIDs": f"PHIMRN{rng.randrange(10**6, 10**7)}",
        "PatientBirthDate": f"19{rng.randrange(30, 99)}0{rng.randrange(1, 9)}1{rng.randrange(0, 9)}",
        "PatientAddress": f"{rng.randrange(1, 99)} Phimark Street, Mocktown",
        "PatientTelephoneNumbers": f"+4179{rng.randrange(100, 999)} 77 PHI",
        "PatientMotherBirthName": f"Phimother^{first}",
    }


def study_values(rng, who, number):
    """Study-level values with planted identifiers."""
    last = who["PatientName"].split("^")[0]
    return {
        "AccessionNumber": f"PHIACC{rng.randrange(10**5, 10**6)}",
        "StudyID": f"PHIS{number}",
        "InstitutionName": "Phimark University Hospital",
        "InstitutionAddress": "1 Phimark Square, Mocktown",
        "ReferringPhysicianName": "Phidoctor^Referring",
        "PerformingPhysicianName": "Phidoctor^Performing",
        "OperatorsName": "Phioperator^Olga",
        "StationName": "PHISTATION7",
        "DeviceSerialNumber": "PHISERIAL-4411",
        "StudyDescription": f"CT chest of {last} PHI",
        "StudyDate": f"2024{rng.randrange(10, 12)}{rng.randrange(10, 28)}",
        "StudyTime": "101500",
    }


def base_dataset(sop_class, who, study, study_uid, series_uid, modality):
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = study["frame_uid"]
    ds.Modality = modality
    ds.SpecificCharacterSet = "ISO_IR 100"
    for keyword, value in who.items():
        setattr(ds, keyword, value)
    for keyword, value in study.items():
        if keyword != "frame_uid":
            setattr(ds, keyword, value)
    ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = ds.StudyDate
    ds.SeriesDescription = f"{modality} series for {who['PatientID']}"
    ds.ImageComments = f"Patient {who['PatientName']} born {who['PatientBirthDate']}"
    # A request nested in a sequence, with identifiers inside.
    request = Dataset()
    request.RequestedProcedureID = f"PHIRP{study['StudyID']}"
    request.ScheduledProcedureStepID = f"PHISPS{study['StudyID']}"
    request.RequestingPhysician = "Phirequester^Rita"
    ds.RequestAttributesSequence = Sequence([request])
    # A private block with the patient's name in it.
    block = ds.private_block(0x0009, PRIVATE_CREATOR, create=True)
    block.add_new(0x10, "LO", f"private copy of {who['PatientName']}")
    ds.Rows = ds.Columns = SIDE
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    # A gradient: no byte pattern of the planted text can appear in it.
    ds.PixelData = b"".join((row * SIDE + col).to_bytes(2, "little")
                            for row in range(SIDE) for col in range(SIDE))
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.is_little_endian = True
    ds.is_implicit_VR = False
    return ds


def generate(outdir, studies, seed):
    """Writes the studies; returns the planted record (also written as
    OUTDIR/planted.json)."""
    rng = random.Random(seed)
    os.makedirs(outdir, exist_ok=True)
    planted = {"values": set(), "uids": set(), "files": []}
    for number in range(1, studies + 1):
        who = patient(rng, rng.randrange(1, 10**4))
        study = study_values(rng, who, number)
        study["frame_uid"] = generate_uid()
        study_uid = generate_uid()
        series = [("CT", CT_IMAGE, 3), ("MR", MR_IMAGE, 1)]
        for modality, sop_class, count in series:
            series_uid = generate_uid()
            for index in range(count):
                ds = base_dataset(sop_class, who, study, study_uid,
                                  series_uid, modality)
                ds.InstanceNumber = index + 1
                name = f"study{number}-{modality.lower()}{index + 1}.dcm"
                path = os.path.join(outdir, name)
                ds.save_as(path, write_like_original=False)
                planted["files"].append(name)
                planted["values"].update(planted_text(ds))
                planted["uids"].update([str(ds.SOPInstanceUID), study_uid,
                                        series_uid, study["frame_uid"]])
        planted["values"].update([who["PatientBirthDate"],
                                  study["StudyDate"]])
    record = {"values": sorted(planted["values"]),
              "uids": sorted(planted["uids"]), "files": planted["files"]}
    with open(os.path.join(outdir, "planted.json"), "w") as stream:
        json.dump(record, stream, indent=1)
    return record


def planted_text(ds):
    """Every text value of ds (nested and private ones too) that carries
    the marker."""
    found = []
    for element in ds.iterall():
        if element.VR in ("PN", "LO", "SH", "ST", "LT", "UT", "UC") and \
                "phi" in str(element.value).lower():
            found.append(str(element.value))
    return found


def dicom_files(folders):
    files = []
    for folder in folders:
        for root, _, names in os.walk(folder):
            files += [os.path.join(root, n) for n in sorted(names)
                      if n.endswith(".dcm")]
    return files


def send(args, folders):
    """storescu +tls; (files acknowledged with Success, files sent,
    storescu's output)."""
    files = dicom_files(folders)
    if not files:
        return 0, 0, "no .dcm files"
    command = ["storescu", "-v", "-aet", args.aet, "-aec", args.called,
               "+tls", args.key, args.chain, "+cf", args.ca,
               args.host, str(args.port)] + files
    try:
        done = subprocess.run(command, capture_output=True, text=True,
                              timeout=STORESCU_TIMEOUT_S)
        output = done.stdout + done.stderr
    except subprocess.TimeoutExpired as expired:
        output = f"storescu timed out: {expired}"
    statuses = re.findall(r"Received Store Response \(([^)]*)\)", output)
    return statuses.count("Success"), len(files), output


def log(message):
    print(time.strftime("%Y-%m-%dT%H:%M:%SZ ", time.gmtime()) + message,
          flush=True)


def loop(args):
    batch = 0
    while True:
        batch += 1
        with tempfile.TemporaryDirectory(prefix="mock-site-") as outdir:
            record = generate(outdir, args.studies,
                              seed=f"{time.time_ns()}-{batch}")
            stored, sent, output = send(args, [outdir])
            log(f"mock.batch batch={batch} files={len(record['files'])} "
                f"sent={sent} success={stored}")
            if stored != sent:
                log("mock.failed " + output.strip().splitlines()[-1]
                    if output.strip() else "mock.failed (no output)")
        time.sleep(args.interval)


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default=setting("MOCK_GATEWAY_HOST",
                                                  "127.0.0.1"))
    parser.add_argument("--port", type=int,
                        default=int(setting("MOCK_GATEWAY_PORT", "2762")))
    parser.add_argument("--aet", default=setting("MOCK_SITE_AET", "SITEA"))
    parser.add_argument("--called", default=setting("MOCK_CALLED_AET",
                                                    "SIREN"))
    parser.add_argument("--key", default=setting(
        "MOCK_TLS_KEY", "/run/secrets/mock-site.key"))
    parser.add_argument("--chain", default=setting(
        "MOCK_TLS_CHAIN", "/run/secrets/mock-site-chain.pem"))
    parser.add_argument("--ca", default=setting(
        "MOCK_TLS_CA", "/run/secrets/mock-registry-ca.pem"))
    parser.add_argument("--studies", type=int,
                        default=int(setting("MOCK_STUDIES", "2")))
    parser.add_argument("--interval", type=float,
                        default=float(setting("MOCK_INTERVAL_S", "600")))
    parser.add_argument("--seed", default="mock-site")
    commands = parser.add_subparsers(dest="command", required=True)
    generate_cmd = commands.add_parser("generate")
    generate_cmd.add_argument("outdir")
    send_cmd = commands.add_parser("send")
    send_cmd.add_argument("folders", nargs="+")
    commands.add_parser("loop")
    return parser.parse_args(argv)


def main(argv):
    args = parse_arguments(argv)
    if args.studies < 1 or args.studies > 1000:
        sys.exit("mock_site.py: --studies must be 1 to 1000")
    if args.command == "generate":
        record = generate(args.outdir, args.studies, args.seed)
        log(f"mock.generated files={len(record['files'])} "
            f"dir={args.outdir}")
        return 0
    if args.command == "send":
        stored, sent, output = send(args, args.folders)
        log(f"mock.sent sent={sent} success={stored}")
        if stored != sent or sent == 0:
            sys.stderr.write(output)
            return 1
        return 0
    loop(args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
