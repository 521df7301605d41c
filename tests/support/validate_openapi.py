"""Validates an OpenAPI document (the file named by argv[1]) with
openapi-spec-validator from PyPI: prints each error and `N errors`, and
exits non-zero if there is any."""

import json
import sys

from openapi_spec_validator import OpenAPIV30SpecValidator, OpenAPIV31SpecValidator

with open(sys.argv[1], encoding="utf-8") as file:
    document = json.load(file)
version = str(document.get("openapi", ""))
validator = OpenAPIV31SpecValidator if version.startswith("3.1") else OpenAPIV30SpecValidator
errors = list(validator(document).iter_errors())
for error in errors:
    where = "/".join(str(part) for part in error.absolute_path)
    print(f"- {error.message} @ {where}")
print(f"{len(errors)} errors")
sys.exit(1 if errors else 0)
