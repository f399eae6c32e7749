"""Native, sklearn-compatible feature transformers.

Each transformer mirrors scikit-learn's class of the same name (parameters, fitted
attributes, output), fits and transforms in C++ over columns in parallel with the GIL
released, supports mergeable fitting (``partial_fit`` / ``merge``) and exports its fitted
state as plain parts (``to_parts`` / ``from_parts``). scikit-learn itself is optional.
"""

from . import _numpy_loops
from ._sketch import QuantileSketch
from .binning import KBinsDiscretizer
from .compose import ColumnTransformer, Pipeline, make_column_transformer, make_pipeline
from .datetime import DateTimeFeatures
from .encoders import CountEncoder, HashEncoder, OneHotEncoder, OrdinalEncoder
from .impute import SimpleImputer
from .monotone import Log1p, PowerTransformer, Winsorizer
from .scalers import MaxAbsScaler, MinMaxScaler, RobustScaler, StandardScaler
from .target import TargetEncoder
from .udf import UDF, UDFTransformer, udf

_numpy_loops.register()

__all__ = [
    "ColumnTransformer", "CountEncoder", "DateTimeFeatures", "HashEncoder", "KBinsDiscretizer",
    "Log1p", "MaxAbsScaler", "MinMaxScaler", "OneHotEncoder", "OrdinalEncoder", "Pipeline",
    "PowerTransformer", "QuantileSketch", "RobustScaler", "SimpleImputer", "StandardScaler",
    "TargetEncoder", "UDF", "UDFTransformer", "Winsorizer", "make_column_transformer",
    "make_pipeline", "udf",
]
