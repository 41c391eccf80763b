"""Validates an HL7 FHIR DocumentReference read from standard input against the R4
structure (fhir.resources' R4B models: DocumentReference is unchanged from R4 4.0.1).
Exits 0 and prints "valid" when it is; otherwise prints why and exits 1."""
import base64
import json
import sys

from fhir.resources.R4B.documentreference import DocumentReference

raw = sys.stdin.read()
try:
    doc = DocumentReference.model_validate_json(raw)
except Exception as error:  # the model's validation error names each bad element
    print(f"invalid: {error}")
    sys.exit(1)

data = json.loads(raw)
problems = []
if doc.status != "current":
    problems.append(f"status is {doc.status!r}")
if not (doc.subject and doc.subject.reference and doc.subject.reference.startswith("Patient/")):
    problems.append("subject does not reference a Patient")
if not doc.content or not doc.content[0].attachment.data:
    problems.append("no attachment data")
else:
    base64.b64decode(data["content"][0]["attachment"]["data"], validate=True)
if problems:
    print("invalid: " + "; ".join(problems))
    sys.exit(1)
print("valid")
