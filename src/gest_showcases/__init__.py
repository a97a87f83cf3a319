"""gest-showcases: personalized showcases for recommendations (Yan et al., SIGIR 2023).

For a user and a recommended business, pick the few business photos this user cares about
(`DPPImageSelector`) and write a short explanation grounded in them
(`PC2LForConditionalGeneration`). Importing the package is cheap: heavy modules load on use.
"""

__version__ = "0.1.0.dev0"
