"""Reads a pytest JUnit XML file and prints "ok|fail|skip NAME" per case."""
import sys
import xml.etree.ElementTree as ET

path, label = sys.argv[1], sys.argv[2]
root = ET.parse(path).getroot()
n = 0
for case in root.iter("testcase"):
    n += 1
    name = f"{label}/{case.get('classname', '')}.{case.get('name', '')}"
    if case.find("failure") is not None or case.find("error") is not None:
        print(f"fail {name}")
    elif case.find("skipped") is not None:
        print(f"skip {name}")
    else:
        print(f"ok {name}")
sys.exit(0 if n else 1)
