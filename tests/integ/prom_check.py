#!/usr/bin/env python3
"""Checks Prometheus text exposition (format 0.0.4) line by line, strictly, and prints the
samples as JSON ({"name{labels}": value}). Exit 1 with the offending line on any violation:
a sample of a family without TYPE, a family split in two, a duplicate series, a bad name,
label or value, a counter not named *_total, a summary sample without its family.
usage: prom_check.py FILE  (t-web.sh)"""
import json, math, re, sys

NAME = r'[a-zA-Z_:][a-zA-Z0-9_:]*'
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*'
VALUE_RE = re.compile(r'^(NaN|[+-]Inf|[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)$')
SAMPLE_RE = re.compile(r'^(' + NAME + r')(\{(.*)\})? (\S+)( -?\d+)?$')
LABELS_RE = re.compile(r'(' + LABEL + r')="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')
TYPES = {'counter', 'gauge', 'summary', 'histogram', 'untyped'}

def fail(n, line, why):
    print(f'line {n}: {why}: {line!r}', file=sys.stderr)
    sys.exit(1)

def family_of(name, types):
    for suffix in ('_sum', '_count', '_bucket'):
        if name.endswith(suffix) and name[:-len(suffix)] in types and types[name[:-len(suffix)]] in ('summary', 'histogram'):
            return name[:-len(suffix)]
    return name

def main():
    text = open(sys.argv[1], encoding='utf-8').read()
    if not text.endswith('\n'):
        fail(0, text[-80:], 'the exposition does not end with a newline')
    types, helps, done, samples = {}, set(), set(), {}
    current = None
    for n, line in enumerate(text.split('\n')[:-1], 1):
        if line.startswith('#'):
            parts = line.split(' ', 3)
            if len(parts) >= 3 and parts[1] in ('HELP', 'TYPE'):
                name = parts[2]
                if not re.fullmatch(NAME, name):
                    fail(n, line, 'bad metric name')
                if name in done or (current and current != name and name in types):
                    fail(n, line, 'family split in two')
                if parts[1] == 'TYPE':
                    if name in types or len(parts) != 4 or parts[3] not in TYPES:
                        fail(n, line, 'second or bad TYPE')
                    if parts[3] == 'counter' and not name.endswith('_total'):
                        fail(n, line, 'a counter not named *_total')
                    types[name] = parts[3]
                else:
                    if name in helps:
                        fail(n, line, 'second HELP')
                    helps.add(name)
                if current and current != name:
                    done.add(current)
                current = name
            continue
        if not line.strip():
            fail(n, line, 'empty line')
        m = SAMPLE_RE.match(line)
        if not m:
            fail(n, line, 'not a sample line')
        name, labels_text, value = m.group(1), m.group(3) or '', m.group(4)
        fam = family_of(name, types)
        if fam not in types:
            fail(n, line, 'sample without a TYPE for its family')
        if fam != current:
            fail(n, line, 'sample outside its family\'s block')
        if not VALUE_RE.match(value):
            fail(n, line, 'bad value')
        pos, labels = 0, []
        while pos < len(labels_text):
            lm = LABELS_RE.match(labels_text, pos)
            if not lm:
                fail(n, line, 'bad label')
            labels.append((lm.group(1), lm.group(2)))
            pos = lm.end()
        if len({k for k, _ in labels}) != len(labels):
            fail(n, line, 'a label twice')
        if types[fam] == 'summary' and name == fam and 'quantile' not in dict(labels):
            fail(n, line, 'a summary sample without quantile')
        key = name + '{' + labels_text + '}'
        if key in samples:
            fail(n, line, 'duplicate series')
        v = float(value.replace('Inf', 'inf'))
        samples[key] = None if math.isnan(v) else v
    print(json.dumps(samples))

main()
