#!/usr/bin/python3
"""The reference: what a researcher would write with pydicom to de-identify a folder.

For every file: dcmread, blank a dozen identifying attributes, drop private tags, new UIDs
(consistent within the run) via pydicom.uid.generate_uid, save_as. Single process.
Usage: /usr/bin/python3 bench/pydicom_loop.py IN OUT   -> prints JSON {files, seconds, version}
"""
import json
import os
import sys
import time

import pydicom
from pydicom.uid import generate_uid

BLANK = [
    'PatientName', 'PatientID', 'PatientBirthDate', 'PatientSex', 'PatientAge', 'PatientAddress',
    'PatientTelephoneNumbers', 'OtherPatientIDsSequence', 'ReferringPhysicianName', 'InstitutionName',
    'InstitutionAddress', 'AccessionNumber', 'StudyID', 'OperatorsName', 'PerformingPhysicianName',
]
UIDS = ['StudyInstanceUID', 'SeriesInstanceUID', 'FrameOfReferenceUID']


def main(src, dst):
    start = time.perf_counter()
    uid_map = {}
    n = 0
    for root, dirs, files in os.walk(src):
        dirs.sort()
        for name in sorted(files):
            ds = pydicom.dcmread(os.path.join(root, name))
            for kw in BLANK:
                if kw in ds:
                    if ds.data_element(kw).VR == 'SQ':
                        del ds[kw]
                    else:
                        ds.data_element(kw).value = ''
            ds.remove_private_tags()
            for kw in UIDS:
                if kw in ds:
                    old = ds.data_element(kw).value
                    ds.data_element(kw).value = uid_map.setdefault(old, generate_uid())
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            out_dir = os.path.join(dst, os.path.relpath(root, src))
            os.makedirs(out_dir, exist_ok=True)
            ds.save_as(os.path.join(out_dir, name))
            n += 1
    print(json.dumps({'files': n, 'seconds': time.perf_counter() - start, 'version': pydicom.__version__}))


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
