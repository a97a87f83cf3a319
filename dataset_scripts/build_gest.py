"""Build the Gest dataset folder (raw/s1/s2 parquet + card + drop report) from the published files.

The same command as `gest-showcases build`:

```bash
python dataset_scripts/build_gest.py --input image_review_all.json --images google-images --output gest
python dataset_scripts/build_gest.py --input filter_all_t.json --images google-images --output gest
python dataset_scripts/build_gest.py --input review-California.json.gz --meta meta-California.json.gz \
    --images google-images --output gest-ca
```
"""

import sys

from gest_showcases.cli import main

if __name__ == "__main__":
    # Through the command-line entry point, so a bad input is one line on stderr and exit code 2
    # (`--debug` for the traceback), exactly as `gest-showcases build`.
    sys.exit(main(["build", *sys.argv[1:]]))
