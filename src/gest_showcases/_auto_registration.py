"""The one place the package's models are registered with transformers' Auto classes.

After `import gest_showcases`, `AutoConfig.for_model("pc2l")`, `AutoConfig.from_pretrained(folder)` and
`AutoModel.from_pretrained(folder)` must know the package's models, yet importing the package must stay free (no
torch, no transformers). transformers' `register` takes the classes themselves, so it cannot run at import. It runs
when transformers itself loads its Auto machinery, from a post-import hook (`install`): the configurations once
`transformers.models.auto.configuration_auto` is loaded (every transformers config import loads it, so this costs
only the package's small configuration modules), the models once `transformers.models.auto.modeling_auto` is loaded.
The latter costs `PreTrainedModel` and GPT-2's modeling (about 2 s on 2 busy cores) even in a process that only
wanted a tokenizer: transformers 5 loads `modeling_auto` with any model config (its `auto_docstring`), and
`AutoModel` looks its classes up in a plain dict, so the real model classes must be there before the first lookup.

Why it waits: transformers loads `modeling_auto` from the middle of importing a model (GPT-2's module imports
`modeling_layers`, which imports `AutoModel`), and peft from the middle of its own import; PC2L imports GPT-2, so
registering right then would read half-initialised modules. The hook therefore counts, per thread, the imports of
transformers, peft and this package in progress, and registers when the outermost one has finished.

No transformers `AutoModelFor...` task class fits these models: each implies inputs (`input_ids`,
`pixel_values`) and a processor a task pipeline feeds, while all three read cached feature vectors.

The custom pipeline task (`PIPELINES`: `transformers.pipeline("personalized-showcase", model=folder)`) registers the
same way, once `transformers.pipelines` is loaded (`PIPELINE_REGISTRY.register_pipeline` takes the class itself); by
then torch and transformers' models are loaded, and the package's pipeline module costs about 0.15 s more.
"""

import _thread
import sys

# (configuration module, configuration class, modeling module, model class, Auto classes of the model)
MODELS = (
    ("generation.configuration_pc2l", "PC2LConfig", "generation.modeling_pc2l", "PC2LForConditionalGeneration",
     ("AutoModel",)),
    ("selection.configuration_dpp", "DPPSelectorConfig", "selection.modeling_dpp", "DPPImageSelector",
     ("AutoModel",)),
    ("features.configuration_explanation", "ExplanationClassifierConfig", "features.modeling_explanation",
     "ExplanationClassifier", ("AutoModel",)),
    # The stand-in CLIP's CNN image tower: `VisionTextDualEncoderModel` builds its vision model with `AutoModel`.
    ("features.configuration_conv_tower", "ConvImageTowerConfig", "features.modeling_conv_tower", "ConvImageTower",
     ("AutoModel",)),
    # Table 2's baselines (issue 16).
    ("baselines.configuration_show_and_tell", "ShowAndTellConfig", "baselines.modeling_show_and_tell",
     "ShowAndTellForExplanation", ("AutoModel",)),
    ("baselines.configuration_r2gen", "R2GenConfig", "baselines.modeling_r2gen", "R2GenForExplanation",
     ("AutoModel",)),
    ("baselines.configuration_ref2seq", "Ref2SeqConfig", "baselines.modeling_ref2seq", "Ref2SeqForExplanation",
     ("AutoModel",)),
    ("baselines.configuration_peter", "PeterConfig", "baselines.modeling_peter", "PeterForExplanation",
     ("AutoModel",)),
    ("baselines.configuration_pepler", "PeplerConfig", "baselines.modeling_pepler", "PeplerForExplanation",
     ("AutoModel",)),
)  # fmt: skip

# (task, pipeline module, pipeline class, modeling module, model class the factory loads from the folder's root)
PIPELINES = (
    ("personalized-showcase", "pipeline", "ShowcaseTransformersPipeline", "generation.modeling_pc2l",
     "PC2LForConditionalGeneration"),
)  # fmt: skip

CONFIGS_TRIGGER = "transformers.models.auto.configuration_auto"
MODELS_TRIGGER = "transformers.models.auto.modeling_auto"
PIPELINES_TRIGGER = "transformers.pipelines"
# Top-level packages whose imports in progress defer the registration (see the module docstring).
WATCHED = frozenset({"transformers", "peft", __name__.partition(".")[0]})

_lock = _thread.RLock()
_depth: dict[int, int] = {}  # thread id -> watched imports in progress in that thread
_registering: set[int] = set()  # threads running a registration (its own imports must not re-enter it)
_done = {"configs": False, "models": False, "pipelines": False}


def _class(module: str, name: str) -> type:
    from importlib import import_module

    return getattr(import_module(f"{__name__.partition('.')[0]}.{module}"), name)


def register_configs() -> None:
    """`AutoConfig.register` every configuration (imports transformers' configuration machinery)."""
    from transformers import AutoConfig

    for config_module, config_name, *_ in MODELS:
        config = _class(config_module, config_name)
        AutoConfig.register(config.model_type, config, exist_ok=True)


def register_models() -> None:
    """`AutoModel.register` (and the other listed Auto classes) every model; imports torch and the models."""
    import transformers

    for config_module, config_name, model_module, model_name, auto_classes in MODELS:
        config, model = _class(config_module, config_name), _class(model_module, model_name)
        for auto_class in auto_classes:
            getattr(transformers, auto_class).register(config, model, exist_ok=True)


def register_pipelines() -> None:
    """`PIPELINE_REGISTRY.register_pipeline` every custom task; imports the package's pipeline module."""
    from transformers.pipelines import PIPELINE_REGISTRY

    for task, pipeline_module, pipeline_name, model_module, model_name in PIPELINES:
        PIPELINE_REGISTRY.register_pipeline(
            task,
            pipeline_class=_class(pipeline_module, pipeline_name),
            pt_model=_class(model_module, model_name),
            type="multimodal",
        )


def register_when_ready() -> None:
    """Register what transformers has loaded the Auto machinery for, unless an import is in progress here."""
    thread = _thread.get_ident()
    if _depth.get(thread) or thread in _registering:
        return
    with _lock:
        _registering.add(thread)
        try:
            # A registration's own imports can load the other trigger (a config module may load `modeling_auto`).
            while steps := [
                (key, step)
                for key, trigger, step in (
                    ("configs", CONFIGS_TRIGGER, register_configs),
                    ("models", MODELS_TRIGGER, register_models),
                    ("pipelines", PIPELINES_TRIGGER, register_pipelines),
                )
                if not _done[key] and trigger in sys.modules
            ]:
                for key, step in steps:
                    _done[key] = True  # once, even if it fails: a failing hook must not fail every import
                    try:
                        step()
                    except Exception as error:  # noqa: BLE001 - reported, and the user's import goes on
                        import warnings

                        warnings.warn(
                            f"gest_showcases could not register its {key} with transformers' Auto classes: "
                            f"{error!r}",
                            RuntimeWarning,
                            stacklevel=2,
                        )
        finally:
            _registering.discard(thread)
        if all(_done.values()) and _FINDER in sys.meta_path:
            sys.meta_path.remove(_FINDER)


class _CountingLoader:
    """Wraps a watched module's loader to count the imports in progress (other attributes pass through)."""

    def __init__(self, loader):
        self._loader = loader

    def __getattr__(self, name: str):
        if name == "_loader":  # not set yet (a copy being made): no recursion
            raise AttributeError(name)
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        thread = _thread.get_ident()
        _depth[thread] = _depth.get(thread, 0) + 1
        try:
            self._loader.exec_module(module)
        finally:
            _depth[thread] -= 1
        register_when_ready()


class _Finder:
    """Meta path finder that lets the other finders find watched modules, and wraps their loaders."""

    def find_spec(self, fullname: str, path=None, target=None):
        if fullname.partition(".")[0] not in WATCHED:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _CountingLoader(spec.loader)
                return spec
        return None


_FINDER = _Finder()


def install() -> None:
    """Register now what transformers has already loaded, and hook the rest (called by `import gest_showcases`)."""
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
    register_when_ready()
