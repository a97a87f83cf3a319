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

from gest_showcases.data.build import main

if __name__ == "__main__":
    sys.exit(main())
