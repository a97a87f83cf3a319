"""Personalized showcases in the browser: the Gradio app `gest-showcases serve` runs (extra `demo`).

Pick a user of the built dataset (or describe one by their reviews, one per line) and a business, and the
page shows the showcase: the photos the selector picks from the business's photo pool and the explanation
the generator writes from them. When the user reviewed that business, their review and its photos are shown
as the ground truth, and the history is the one stored with that review (their other reviews), as
`gest-showcases showcase` builds it (`gest_showcases.dataset_requests`). A described user has no photos and no truth;
one with no text is a cold user (see `gest_showcases.pipeline`).

The server binds `--host`/`--port` only: no share link (`share=False`), no analytics or version check
(`GRADIO_ANALYTICS_ENABLED=False`), and the page loads nothing from outside it, so it works offline.

What it shares. Every stored image path of the dataset goes through the one path policy
(`gest_showcases.data.folder.dataset_image_paths`: relative, inside the dataset folder or `--images`);
a dataset with any other path is refused at startup, naming the review. Gradio serves exactly the folders that hold the dataset's
photos (`allowed_paths`), never a parent of them, and refuses to start when such a folder (or
`--images`) is `/`, the home folder or one above it, or holds the dataset folder itself: the served
folder must be a folder of photos. (Gradio can also take a list of files, but it then resolves every
entry on every request: a dataset's worth of photos would make each request cost thousands of
`stat` calls.)

What it writes. Nothing, unless `--output_dir DIR` is given: then every showcase the page shows is also
written into DIR as one self-contained HTML file, the report `gest-showcases showcase --output_dir` writes
(`gest_showcases.report`), named by the user and the business (`showcase_file_name`: ids sanitised so that
none can lead out of DIR) and replaced atomically when shown again. A described user's showcase at a
business takes one file, overwritten by the next description, so the folder holds at most one file per user
and business of the dataset, plus one per business.

Who can reach it. The default host is 127.0.0.1 (this machine only). Bound to any other address, the
page, the dataset's user ids (the user list is in the page's `/config`) and its photos are open to the
network: a warning says so on stderr, louder without `--auth USER:PASSWORD` (Gradio's login, which
also guards `/config` and the files). The password is visible in the process list to other users of
this machine, and HTTP is plain text: put the app behind HTTPS on an untrusted network.
"""

from __future__ import annotations

import hashlib
import html
import ipaddress
import logging
import re
import socket
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from gest_showcases.data.folder import dataset_image_paths, read_rows
from gest_showcases.dataset_requests import request_from_rows
from gest_showcases.errors import InputError, check_at_least
from gest_showcases.files import write_text_atomically
from gest_showcases.pipeline import Showcase, ShowcaseInput, ShowcasePipeline
from gest_showcases.report import ReportExample, build_report

if TYPE_CHECKING:
    import gradio as gr

logger = logging.getLogger(__name__)

DATASET_USER, DESCRIBED_USER = "A user of the dataset", "Describe a user"
_FILE_NAME_PART = re.compile(r"[A-Za-z0-9_-]{1,64}")
# A described user's history is CLIP-encoded whole on every request: bounded, so one request cannot take the server.
MAX_DESCRIBED_REVIEWS, MAX_DESCRIPTION_CHARACTERS = 50, 20_000
# Markdown's punctuation: a warning that quotes dataset ids is shown as text, never as a link or an image.
_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~])")


@dataclass
class ServeArguments:
    """Where the app listens and whom it lets in: `gest-showcases serve`'s own options."""

    host: str = field(
        default="127.0.0.1",
        metadata={"help": "address to bind (127.0.0.1: this machine only; 0.0.0.0: every interface)"},
    )
    port: int = field(default=7860, metadata={"help": "port to serve on"})
    auth: str | None = field(
        default=None,
        metadata={
            "help": "USER:PASSWORD the page asks for (Gradio's login); needed to serve beyond this machine "
            "safely. Visible in the process list to other local users"
        },
    )

    def __post_init__(self):
        check_at_least(self, port=1)
        if self.port > 65535:  # else the server fails to bind, with a traceback, after the models have loaded
            raise InputError(f"--port {self.port}: give a port number up to 65535")


def parse_auth(value: str | None) -> tuple[str, str] | None:
    """`--auth USER:PASSWORD` -> (user, password); None when not given. The password may hold colons."""
    if value is None:
        return None
    user, colon, password = value.partition(":")
    if not (colon and user.strip() and password):
        raise InputError("--auth must be USER:PASSWORD, both non-empty (e.g. --auth demo:s3cret)")
    return user, password


def is_loopback(host: str) -> bool:
    """Whether `host` is reachable from this machine only (localhost, 127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return False


def url_host(host: str) -> str:
    """`host` as it goes in a URL: an IPv6 address in brackets (`::1` -> `[::1]`), which is also how Gradio's launch
    takes it (it builds `http://{host}:{port}`, and a bare `::1` fails there after the models have loaded)."""
    bare = host.strip("[]")
    try:
        return f"[{bare}]" if ipaddress.ip_address(bare).version == 6 else host
    except ValueError:  # a host name
        return host


def exposure_warning(serve: ServeArguments) -> str | None:
    """What serving on `serve.host` exposes, in words; None on a loopback address."""
    if is_loopback(serve.host):
        return None
    where = f"{url_host(serve.host)}:{serve.port}"
    if serve.auth is None:
        return (
            f"serving on {where} WITHOUT A LOGIN: anyone who can reach this address can use the app, "
            "read the dataset's user ids (the page's /config lists them all) and its photos. "
            "Pass --auth USER:PASSWORD, or --host 127.0.0.1 to serve this machine only."
        )
    return (
        f"serving on {where}, beyond this machine (login required: --auth). HTTP is plain text: the "
        "password and the pages can be read on the way; put the app behind HTTPS on an untrusted network."
    )


def _unsafe_to_serve(folder: Path, dataset: Path) -> str | None:
    """Why `folder` must not be shared as a folder of photos, or None."""
    if folder == Path(folder.anchor):
        return "it is the file system's root"
    try:
        home = Path.home().resolve()
    except RuntimeError:  # no home folder known: nothing to protect there
        home = None
    if home is not None and home.is_relative_to(folder):
        return "it is the home folder" if folder == home else f"it holds the home folder {home}"
    if dataset.is_relative_to(folder):
        return f"it holds the dataset folder {dataset}"
    return None


class DatasetCatalog:
    """The users, businesses and photos of one config of a built dataset folder, read once, for the app.

    Every stored image path is resolved by the one path policy (`dataset_image_paths`): a dataset with a
    path that is absolute or leads outside the dataset folder and `images` is refused (`InputError`).

    Args:
        folder (`str` or `Path`): the built dataset folder.
        config (`str`): the config to read (`s1` or `s2`).
        images (`str` or `Path`, *optional*): the folder of its photos, when they lie outside `folder`.
    """

    def __init__(self, folder: str | Path, config: str, images: str | Path | None = None):
        self.folder, self.config, self.images = Path(folder), config, images
        self.rows = read_rows(folder, config)
        if not self.rows:
            raise ValueError(f"{folder} (config {config!r}) has no reviews to show")
        self.paths = dataset_image_paths(folder, self.rows, images)
        self.review_counts = Counter(row["user_id"] for row in self.rows)
        pools: dict[str, dict[str, None]] = {}  # business -> its photos, in first-seen order
        self.reviewed: dict[str, set[str]] = {}
        for row in self.rows:
            pools.setdefault(row["business_id"], {}).update(dict.fromkeys(row["candidate_pics"]))
            self.reviewed.setdefault(row["user_id"], set()).add(row["business_id"])
        self.pools = {business: list(pics) for business, pics in sorted(pools.items()) if pics}

    def image_dirs(self) -> list[str]:
        """The folders holding the dataset's photos: the only files the app serves (`allowed_paths`).

        Raises:
            `InputError`: when `--images` or one of these folders is `/`, the home folder or above it, or
                holds the dataset folder: it would share far more than photos.
        """
        served = sorted({path.parent for path in self.paths.values()})  # the paths are resolved already
        # `--images` is checked too: the path policy lets any row point anywhere inside it.
        roots = [Path(self.images).resolve()] if self.images is not None else []
        for folder in roots + served:
            reason = _unsafe_to_serve(folder, self.folder.resolve())
            if reason:
                raise InputError(
                    f"refusing to serve {folder} (photos of {self.folder}): {reason}. "
                    "Keep the photos in a folder of their own and pass it as --images"
                )
        return [str(folder) for folder in served]

    def user_choices(self) -> list[tuple[str, str]]:
        """(label, user_id) for every user, most reviews first."""
        return [
            (f"{user} ({count} review{'s' * (count != 1)})", user)
            for user, count in sorted(self.review_counts.items(), key=lambda item: (-item[1], item[0]))
        ]

    def business_choices(self, user: str | None = None) -> list[tuple[str, str]]:
        """(label, business_id) for every business with photos; those `user` reviewed come first, marked."""
        reviewed = self.reviewed.get(user or "", set())
        ordered = sorted(self.pools, key=lambda business: (business not in reviewed, business))
        return [
            (
                f"{business} ({len(self.pools[business])} photos"
                + (", reviewed by this user)" if business in reviewed else ")"),
                business,
            )
            for business in ordered
        ]

    def described_request(self, description: str, business: str) -> ShowcaseInput:
        """A described user's request: one history review per non-empty line of `description`."""
        if business not in self.pools:
            raise ValueError(f"business {business!r} has no photos in {self.folder} (config {self.config!r})")
        lines = description[: MAX_DESCRIPTION_CHARACTERS + 1].splitlines()
        texts = [line.strip() for line in lines if line.strip()]
        if len(texts) > MAX_DESCRIBED_REVIEWS or len(description) > MAX_DESCRIPTION_CHARACTERS:
            raise ValueError(
                f"describe the user in at most {MAX_DESCRIBED_REVIEWS} reviews, one per line, and "
                f"{MAX_DESCRIPTION_CHARACTERS:,} characters"
            )
        described = {"candidate_pics": self.pools[business], "history_texts": texts, "business_id": business}
        return ShowcaseInput.from_row(described, self.paths)


@dataclass
class ShowcaseView:
    """What the page shows for one request (the Gradio outputs, in order).

    Args:
        photos (`list[tuple[str, str]]`): (file, caption) of the selected photos, in pick order.
        explanation (`str`): the generated explanation.
        history (`str`): the history reviews the showcase is personalised on, one per line.
        truth_text (`str`): the user's review of the business, or a line saying there is none.
        truth_photos (`list[tuple[str, str]]`): (file, caption) of that review's photos.
        notes (`str`): the pipeline's warnings as a Markdown list ("" when none).
    """

    photos: list[tuple[str, str]]
    explanation: str
    history: str
    truth_text: str
    truth_photos: list[tuple[str, str]]
    notes: str

    def outputs(self) -> tuple:
        return self.photos, self.explanation, self.history, self.truth_text, self.truth_photos, self.notes


def showcase_view(showcase: Showcase, history: list[str], truth_text: str, truth_photos) -> ShowcaseView:
    """A `Showcase` and its ground truth (`truth_photos`: (pic_id, path) pairs) as the page shows them."""
    photos = [
        (photo.path, f"{rank}. {photo.id} (log relevance {photo.score:.2f})")
        for rank, photo in enumerate(showcase.photos, start=1)
    ]
    if not truth_text and not truth_photos:
        truth_text = "No ground truth: this user has not reviewed this business."
    return ShowcaseView(
        photos=photos,
        explanation=showcase.explanation,
        history="\n".join(history) or "(no history: a cold user)",
        truth_text=truth_text,
        truth_photos=[(str(path), pic) for pic, path in truth_photos],
        notes="\n".join(f"- {markdown_text(warning)}" for warning in showcase.warnings),
    )


def markdown_text(text: str) -> str:
    """`text` escaped for Markdown: shown as written, whatever ids or brackets it quotes."""
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", text)


def _file_name_part(identifier: str) -> str:
    """`identifier` as a part of a file name: kept when it is 1 to 64 letters, digits, `-` and `_` (every Yelp
    id); otherwise those characters only (others become `_`, at most 48), then `-` and 8 hex digits of its
    SHA-256, so that two ids that read alike (`a/b`, `a_b`) still name two files."""
    if _FILE_NAME_PART.fullmatch(identifier):
        return identifier
    digest = hashlib.sha256(identifier.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{re.sub(r'[^A-Za-z0-9_-]', '_', identifier)[:48]}-{digest}"


def showcase_file_name(user: str | None, business: str) -> str:
    """The HTML file name of the showcase of `user` (None: a described user) at `business`.

    `showcase.USER.BUSINESS.html`, or `showcase-described-user.BUSINESS.html`. The ids go through
    `_file_name_part`: the name holds no `/`, `\\`, `..` or other character a path could use to leave its
    folder, and the `.` between the parts is unambiguous because no part holds one.
    """
    if user is None:
        return f"showcase-described-user.{_file_name_part(business)}.html"
    return f"showcase.{_file_name_part(user)}.{_file_name_part(business)}.html"


class ShowcaseApp:
    """Answers the page's requests with a `ShowcasePipeline` over a `DatasetCatalog`.

    Args:
        pipeline ([`ShowcasePipeline`]): loaded models.
        catalog ([`DatasetCatalog`]): the dataset's users, businesses and photos.
        k (`int`, *optional*): photos per showcase; defaults to the selector's `top_k`.
        output_dir (`str` or `Path`, *optional*): when given, every showcase shown is also written there as
            a self-contained HTML file (`write_showcase`; the folder is created now). Default: nothing is
            written.
        report_details (`Mapping[str, object]`, *optional*): the key facts those files list (checkpoints).
    """

    def __init__(
        self,
        pipeline: ShowcasePipeline,
        catalog: DatasetCatalog,
        k: int | None = None,
        output_dir: str | Path | None = None,
        report_details: Mapping[str, object] | None = None,
    ):
        self.pipeline, self.catalog, self.k = pipeline, catalog, k
        self.output_dir = None if output_dir is None else Path(output_dir)
        self.report_details = dict(report_details or {})
        if self.output_dir is not None:
            # An unwritable folder stops the app at startup, not at its first showcase.
            self.output_dir.mkdir(parents=True, exist_ok=True)

    def respond(self, mode: str, user: str | None, description: str, business: str | None) -> ShowcaseView:
        """The showcase of a dataset user (`mode` `DATASET_USER`) or a described one at `business`.

        Raises ValueError naming what is missing or wrong (no business, no user, a business with no
        readable photo, ...). With `output_dir`, the showcase is also written there (`write_showcase`); a
        write that fails is logged and noted on the page, and the showcase is shown all the same."""
        if not business:
            raise ValueError("pick a business")
        if mode == DATASET_USER:
            if not user:
                raise ValueError("pick a user, or choose 'Describe a user'")
            catalog = self.catalog
            where = f"{catalog.folder} (config {catalog.config!r})"
            found = request_from_rows(catalog.rows, catalog.paths, user, business, where)
            request, truth_text, truth_photos = found.request, found.truth_text, found.truth_photos
            history_photos = found.history_photos
        else:
            request, truth_text, truth_photos = self.catalog.described_request(description, business), "", []
            history_photos = []
        showcase = self.pipeline(request, k=self.k)
        view = showcase_view(showcase, list(request.history_texts), truth_text, truth_photos)
        if self.output_dir is not None:
            try:
                self.write_showcase(showcase, request, truth_text, truth_photos, history_photos)
            except OSError as error:  # a full disk: the page still shows what was computed
                logger.error("could not write the showcase into %s: %s", self.output_dir, error)
                note = f"- not saved to --output_dir: {markdown_text(str(error))}"
                view.notes = "\n".join(filter(None, [view.notes, note]))
        return view

    def write_showcase(
        self,
        showcase: Showcase,
        request: ShowcaseInput,
        truth_text: str = "",
        truth_photos=(),
        history_photos=(),
    ) -> Path:
        """`showcase` as one self-contained HTML file in `output_dir`, the report `gest-showcases showcase
        --output_dir` writes, named by `showcase_file_name` and replaced atomically; returns its path.

        Args:
            showcase ([`Showcase`]), request ([`ShowcaseInput`]): what the pipeline gave, for what.
            truth_text (`str`), truth_photos, history_photos (`(pic_id, path)` pairs): what the dataset knows
                of the pair (`gest_showcases.dataset_requests.DatasetRequest`); empty for a described user.
        """
        if self.output_dir is None:
            raise ValueError("this app was given no output_dir to write showcases into")
        business, user = request.business_id, request.user_id
        path = self.output_dir / showcase_file_name(user, business)
        who = "a described user" if user is None else f"user {user}"
        history = (
            "the reviews typed into the page"
            if user is None
            else f"the user's reviews in {self.catalog.folder} (config {self.catalog.config})"
        )
        example = ReportExample.from_showcase(
            showcase,
            truth_text=truth_text,
            truth_photos=list(truth_photos),
            history_texts=list(request.history_texts),
            history_photos=list(history_photos),
        )
        statement = (
            f"One showcase for {who} at business {business}, shown by `gest-showcases serve`: candidates are "
            f"the business's photos and the history is {history}."
        )
        page = build_report(
            f"Showcase: {who} at {business}",
            examples=[example],
            statement=statement,
            details=self.report_details,
        )
        write_text_atomically(path, page)
        logger.info("wrote the showcase of %s at %s to %s", who, business, path)
        return path

    def _respond_or_alert(self, mode, user, description, business) -> tuple:
        import gradio as gr

        try:
            return self.respond(mode, user, description, business).outputs()
        except ValueError as error:
            # Gradio renders an alert's message as HTML; it names dataset ids, which are anyone's text.
            raise gr.Error(html.escape(str(error))) from error

    def build(self) -> gr.Blocks:
        """The page: the pickers, a Show button, and the showcase below."""
        import gradio as gr

        users = self.catalog.user_choices()
        with gr.Blocks(title="Personalized showcases", analytics_enabled=False) as page:
            gr.Markdown(
                "# Personalized showcases\nPick a user and a business: the photos chosen for this user from "
                "the business's photos, and the explanation written from them."
            )
            with gr.Row():
                with gr.Column():
                    mode = gr.Radio(
                        [DATASET_USER, DESCRIBED_USER], value=DATASET_USER, label="User", elem_id="mode"
                    )
                    user = gr.Dropdown(
                        users, value=users[0][1], label="User of the dataset", elem_id="user", filterable=True
                    )
                    description = gr.Textbox(
                        label="The user's reviews, one per line",
                        lines=4,
                        max_length=MAX_DESCRIPTION_CHARACTERS,
                        visible=False,
                        elem_id="description",
                        placeholder="Great ramen, the broth was rich.\nCozy place with friendly staff.",
                    )
                with gr.Column():
                    business = gr.Dropdown(
                        self.catalog.business_choices(users[0][1]),
                        label="Business",
                        elem_id="business",
                        filterable=True,
                    )
                    show = gr.Button("Show the showcase", variant="primary", elem_id="show")
            gallery = gr.Gallery(
                label="Selected photos", columns=4, fit_columns=False, elem_id="photos", allow_preview=False
            )
            explanation = gr.Textbox(label="Explanation", interactive=False, elem_id="explanation")
            notes = gr.Markdown(elem_id="notes")
            with gr.Row():
                with gr.Column():
                    truth_text = gr.Textbox(label="Ground truth review", interactive=False, elem_id="truth")
                    truth_photos = gr.Gallery(
                        label="Ground truth photos",
                        columns=4,
                        fit_columns=False,
                        elem_id="truth-photos",
                        allow_preview=False,
                    )
                history = gr.Textbox(
                    label="History the showcase is personalised on",
                    interactive=False,
                    lines=4,
                    elem_id="history",
                )

            mode.change(
                lambda value: (
                    gr.Dropdown(visible=value == DATASET_USER),
                    gr.Textbox(visible=value != DATASET_USER),
                ),
                inputs=mode,
                outputs=[user, description],
                api_visibility="private",
            )
            # A described user has reviewed nothing: the business list then marks no business.
            for trigger in (mode, user):
                trigger.change(
                    lambda mode_value, user_value: gr.Dropdown(
                        choices=self.catalog.business_choices(
                            user_value if mode_value == DATASET_USER else None
                        )
                    ),
                    inputs=[mode, user],
                    outputs=business,
                    api_visibility="private",
                )
            show.click(
                self._respond_or_alert,
                inputs=[mode, user, description, business],
                outputs=[gallery, explanation, history, truth_text, truth_photos, notes],
                api_name="showcase",
            )
        return page


def check_can_listen(host: str, port: int) -> None:
    """Bind `host:port` once and let it go, before any model loads: an address in use or a host that does not
    resolve would otherwise fail in Gradio's launch, with a traceback, after the models have loaded.

    Raises:
        `InputError`: "--host H --port P: cannot listen there (reason); ...".
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds it
            probe.bind(address)
    # socket.gaierror (no such host) is an OSError; a name the IDNA codec refuses (`not..a..host`) a UnicodeError.
    except (OSError, UnicodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise InputError(f"--host {host} --port {port}: cannot listen there ({reason}); give another") from error


def launch_options(serve: ServeArguments, catalog: DatasetCatalog) -> dict:
    """The keyword arguments of `gr.Blocks.launch` for `serve` over `catalog` (what is shared, to whom).

    Raises:
        `InputError`: for a malformed `--auth` or a photo folder that must not be shared (`image_dirs`).
    """
    local = is_loopback(serve.host)
    return {
        "server_name": url_host(serve.host),
        "server_port": serve.port,
        "share": False,
        "allowed_paths": catalog.image_dirs(),
        "auth": parse_auth(serve.auth),
        # Unexpected errors (not the `gr.Error` alerts) show their message, which may name local
        # files, only to a page opened on this machine.
        "show_error": local,
        "ssr_mode": False,
    }
