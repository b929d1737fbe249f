#!/usr/bin/python3
# charset_cases.py - regenerates the pydicom oracle table of
# tests/unit/test_dicom_charset.c: run with /usr/bin/python3 (Debian's, which
# has python3-pydicom) and paste its output into the table.
import glob, os, sys
import pydicom
from pydicom.valuerep import PersonName

DIR = '/usr/lib/python3/dist-packages/pydicom/data/charset_files'
TEXT_VRS = ('PN', 'SH', 'LO', 'ST', 'LT', 'UT', 'UC')

def c_bytes(b, indent='     '):
    pieces = c_pieces(b)
    lines, line = [], ''
    for p in pieces:
        if len(line) + len(p) > 64:
            lines.append(line)
            line = ''
        line += p
    lines.append(line)
    return ('\n' + indent).join('"' + l + '"' for l in lines)

def c_pieces(b):
    out = []
    for ch in b:
        c = chr(ch)
        if c == '"' or c == '\\':
            out.append('\\' + c)
        elif c == '?':
            out.append('\\?')
        elif 0x20 <= ch < 0x7f:
            out.append(c)
        else:
            out.append('\\%03o' % ch)
    return out

def text_of(value):
    if isinstance(value, (list, pydicom.multival.MultiValue)):
        return '\\'.join(text_of(v) for v in value)
    return str(value)

rows = []
seen = set()
def walk(raw_ds, dec_ds, fname, scs):
    for tag in raw_ds.keys():
        raw = raw_ds.get_item(tag)
        el = dec_ds[tag]
        if el.VR == 'SQ':
            for raw_item, dec_item in zip(raw_ds[tag].value, el.value):
                item_scs = raw_item.get_item(0x00080005)
                walk(raw_item, dec_item, fname,
                     item_scs.value if item_scs is not None else scs)
            continue
        if el.VR not in TEXT_VRS:
            continue
        value = raw.value.rstrip(b' \0')
        expected = text_of(el.value)
        if el.VR == 'PN':
            # pydicom drops trailing empty component groups; the decoder
            # under test keeps the bytes it was given.
            trailing = len(value) - len(value.rstrip(b'='))
            expected += '=' * (trailing - (len(expected) - len(expected.rstrip('='))))
        interesting = (any(b >= 0x80 or b == 0x1b for b in value)
                       or b'\\' in value or tag == 0x00100020)
        if not interesting:
            continue
        scs = scs if isinstance(scs, bytes) else '\\'.join(
            scs if isinstance(scs, (list, pydicom.multival.MultiValue)) else [scs]).encode()
        key = (scs, el.VR, value)
        if key in seen or not value:
            continue
        seen.add(key)
        rows.append((fname, tag, scs, el.VR, value, expected))

for path in sorted(glob.glob(DIR + '/*.dcm')):
    fname = os.path.basename(path)[:-4]
    raw_ds = pydicom.dcmread(path)
    dec_ds = pydicom.dcmread(path)
    dec_ds.decode()
    walk(raw_ds, dec_ds, fname, raw_ds.get_item(0x00080005).value)

for fname, tag, scs, vr, value, expected in rows:
    shown = expected if len(expected) <= 40 else expected[:37] + '...'
    print('    /* (%04X,%04X) %s */' % (tag.group, tag.element, shown))
    print('    {"%s", %s, DCM_VR_%s,\n     %s,\n     %s},' % (
        fname, c_bytes(scs), vr, c_bytes(value), c_bytes(expected.encode('utf-8'))))
print(len(rows), file=sys.stderr)
