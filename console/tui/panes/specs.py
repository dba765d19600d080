"""The Specs pane: the spec files of the specs folder, a YAML editor validating as you type,
the findings with their line and column, save (atomic, previous version kept) and apply.

Nothing typed is lost: invalid YAML is only reported; a failed save shows why and keeps the
buffer (still marked unsaved); switching files or quitting with unsaved changes asks first.
Validation runs in a thread worker after a short pause in typing (debounced); saving and
planning an apply also run in workers, through the action gate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.timer import Timer
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from console.datadir import atomic_write, backup_path
from console.resource_kinds import kinds_created_by_specs
from console.tui import offered_actions
from console.tui.offered_actions import SPEC_SAVE
from rtm.documents import LoadResult, load_text, spec_files
from rtm.findings import Finding

if TYPE_CHECKING:
    from textual.widgets import TextArea

    from console.tui.app import RtmConsole

VALIDATE_DELAY = 0.35  # seconds of quiet typing before validating
NEW_SPEC = "# A new spec. Top-level keys are kinds, e.g.:\n# name: web\n# ContainerRuntime:\n#   base_image: \"alpine:3.18\"\n"


def yaml_highlighting() -> bool:
    """Whether the editor can colour YAML (textual's tree-sitter support and its YAML grammar)."""
    try:
        import tree_sitter  # noqa: F401
        import tree_sitter_yaml  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class SpecFile:
    path: Path
    label: str
    sample: bool = False  # a bundled sample: opened as a new file of the specs folder


def list_spec_files(specs_dir: Path, samples_dir: Path | None) -> list[SpecFile]:
    files = []
    if specs_dir.is_dir():
        files += [SpecFile(p, str(p.relative_to(specs_dir))) for p in spec_files([specs_dir])]
    if samples_dir is not None and samples_dir.is_dir():
        files += [SpecFile(p, str(p.relative_to(samples_dir)), sample=True) for p in spec_files([samples_dir])]
    return files


def finding_label(finding: Finding) -> Text:
    text = Text()
    text.append(f"{finding.line}:{finding.column} ", style="bold")
    text.append(finding.severity, style="bold reverse" if finding.severity == "error" else "italic")
    text.append(f" {finding.message}")
    if finding.hint:
        text.append(f" (hint: {finding.hint})", style="dim")
    return text


class SpecsPane(Vertical):
    kind = "specs"

    BINDINGS = [
        Binding("ctrl+s", "save", "Save"),
        Binding("ctrl+n", "new_spec", "New spec"),
        Binding("f5", "reload_files", "Reload list"),
        Binding("f6", "apply", "Apply"),
        Binding("f8", "next_finding", "Next finding"),
        Binding("escape", "leave_editor", "Leave editor", show=False),
    ]

    DEFAULT_CSS = """
    SpecsPane #spec-body { height: 1fr; }
    SpecsPane #spec-files { width: 26; text-wrap: nowrap; text-overflow: ellipsis; }  /* long names end in … */
    SpecsPane #spec-title { height: 1; padding: 0 1; background: $panel; }
    SpecsPane TextArea { height: 1fr; }
    SpecsPane #spec-findings { height: 6; }
    SpecsPane #spec-status { height: 1; padding: 0 1; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.files: list[SpecFile] = []
        self.alerted_files: frozenset[str] = frozenset()  # spec files of workloads with a firing alert
        self.path: Path | None = None  # where the buffer is saved
        self.saved_text = ""
        self.findings: tuple[Finding, ...] = ()
        self.last_result: LoadResult | None = None
        self.saving = False
        self._timer: Timer | None = None
        self._generation = 0  # drops validation results of older text
        self._validated_text: str | None = None  # the text of the latest validation

    @property
    def console(self) -> RtmConsole:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        from textual.widgets import TextArea  # with tree-sitter: imported when the pane is built

        highlighting = yaml_highlighting()
        with Horizontal(id="spec-body"):
            yield OptionList(id="spec-files")
            with Vertical():
                yield Static("no file open", id="spec-title")
                yield TextArea(
                    "",
                    language="yaml" if highlighting else None,
                    show_line_numbers=True,
                    tab_behavior="indent",
                    read_only=self.console.options.kiosk,
                    theme=self.console.editor_theme,
                    id="spec-editor",
                )
                yield OptionList(id="spec-findings")
        note = "" if highlighting else "  (no YAML colours: install tree-sitter and tree-sitter-yaml)"
        yield Static(f"specs folder: {self.console.services.specs_dir}{note}", id="spec-status")

    def on_mount(self) -> None:
        self.action_reload_files()

    def focus_files(self) -> None:
        self.screen.set_focus(self.query_one("#spec-files", OptionList))  # now: see ResourcePane.focus_table

    def action_leave_editor(self) -> None:
        """Esc in the editor: back to the file list, where the console's keys work again."""
        self.focus_files()

    @property
    def editor(self) -> TextArea:
        from textual.widgets import TextArea

        return self.query_one("#spec-editor", TextArea)

    @property
    def dirty(self) -> bool:
        return self.path is not None and self.editor.text != self.saved_text

    # ------------------------------------------------------------------ files

    def action_reload_files(self) -> None:
        services = self.console.services
        self.files = list_spec_files(services.specs_dir, services.samples_dir)
        files = self.query_one("#spec-files", OptionList)
        files.clear_options()
        own = [(index, spec) for index, spec in enumerate(self.files) if not spec.sample]
        samples = [(index, spec) for index, spec in enumerate(self.files) if spec.sample]
        files.add_option(Option(Text("specs folder", style="bold"), disabled=True))
        files.add_options([Option(self._label(spec), id=str(index)) for index, spec in own])
        if not own:
            files.add_option(Option(Text("(empty: Ctrl+N starts a spec)", style="italic"), disabled=True))
        if samples:
            files.add_option(Option(Text("samples (saved as copies)", style="bold"), disabled=True))
            files.add_options([Option(spec.label, id=str(index)) for index, spec in samples])

    def _label(self, spec: SpecFile) -> str:
        return f"ALERT {spec.label}" if str(spec.path) in self.alerted_files else spec.label

    def mark_alerted(self, paths: frozenset[str]) -> None:
        """Spec files defining a workload with a firing alert say so first on their line (read
        before a long name's ellipsis)."""
        if paths == self.alerted_files:
            return
        self.alerted_files = paths
        if not self.query("#spec-files"):
            return
        files = self.query_one("#spec-files", OptionList)
        for index, spec in enumerate(self.files):
            if not spec.sample:
                files.replace_option_prompt(str(index), self._label(spec))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option_list.id == "spec-files" and event.option.id is not None:
            self.ask_then(lambda: self.open_file(self.files[int(event.option.id)]))
        elif event.option_list.id == "spec-findings" and event.option.id is not None:
            self.jump_to(self.findings[int(event.option.id)])

    def ask_then(self, proceed: Any) -> None:
        """Run `proceed` now, or after the operator chose what to do with unsaved changes."""
        if not self.dirty:
            proceed()
            return
        self.console.ask_unsaved(self, proceed)

    def open_file(self, spec: SpecFile) -> None:
        try:
            text = spec.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            self.notify(f"cannot open {spec.path}: {getattr(exc, 'strerror', None) or exc}", severity="error")
            return
        if spec.sample:
            # A sample is a starting point: it is saved into the specs folder, never over itself.
            self.load_buffer(self.console.services.specs_dir / spec.path.name, text, saved_text="")
        else:
            self.load_buffer(spec.path, text, saved_text=text)

    def load_buffer(self, path: Path, text: str, saved_text: str) -> None:
        self.path = path
        self.saved_text = saved_text
        self.editor.load_text(text)
        self.update_title()
        self.validate_now()

    def action_new_spec(self) -> None:
        def create(name: str | None) -> None:
            if not name:
                return
            file_name = name if name.endswith((".yaml", ".yml")) else f"{name}.yaml"
            self.load_buffer(self.console.services.specs_dir / file_name, NEW_SPEC, saved_text="")
            self.editor.focus()

        self.ask_then(lambda: self.console.ask_text("New spec file name (in the specs folder):", create))

    def update_title(self) -> None:
        title = self.query_one("#spec-title", Static)
        if self.path is None:
            title.update("no file open")
            return
        state = "  [unsaved]" if self.dirty else ""
        if self.saving:
            state += "  saving…"
        title.update(Text(f"{self.path}{state}"))

    # ------------------------------------------------------------------ validation

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        self.update_title()
        if self._timer is not None:
            self._timer.stop()
        if self.editor.text == self._validated_text:
            # Loading a file reports a change too, and it was validated as it loaded: a second
            # validation would rebuild the findings list under the operator's selection.
            return
        self._timer = self.set_timer(VALIDATE_DELAY, self.validate_now)

    def validate_now(self) -> None:
        self._generation += 1
        self._validated_text = self.editor.text
        self.validate(self._validated_text, str(self.path or "<new>"), self._generation)

    @work(thread=True, exclusive=True, group="spec-validate")
    def validate(self, text: str, path: str, generation: int) -> None:
        result = load_text(text, path)
        self.app.call_from_thread(self.show_findings, result, generation)

    def show_findings(self, result: LoadResult, generation: int) -> None:
        if generation != self._generation:
            return  # the text changed since; a newer validation is on its way
        self.last_result = result
        self.findings = result.findings
        findings = self.query_one("#spec-findings", OptionList)
        findings.clear_options()
        if not self.findings:
            findings.add_option(Option(Text(f"valid: {len(result.documents)} document(s)"), disabled=True))
        else:
            findings.add_options([Option(finding_label(f), id=str(i)) for i, f in enumerate(self.findings)])

    def jump_to(self, finding: Finding) -> None:
        self.editor.cursor_location = (max(0, finding.line - 1), max(0, finding.column - 1))
        self.editor.scroll_cursor_visible(center=True)
        self.editor.focus()

    def action_next_finding(self) -> None:
        if not self.findings:
            self.notify("No findings.")
            return
        row, _ = self.editor.cursor_location
        after = [f for f in self.findings if f.line - 1 > row]
        self.jump_to(after[0] if after else self.findings[0])

    # ------------------------------------------------------------------ save

    def action_save(self) -> None:
        if self.path is None:
            self.notify("Open or create a spec first (Ctrl+N).", severity="warning")
            return
        if self.saving:
            return
        self.saving = True
        self.update_title()
        self.save(self.path, self.editor.text)

    @work(thread=True, group="spec-save")
    def save(self, path: Path, text: str) -> None:
        def write() -> Path:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, text, keep_previous=True)
            return path

        result = self.console.services.gate.run(SPEC_SAVE.name, f"spec/{path.name}", {"path": str(path)}, write)
        self.app.call_from_thread(self.saved, path, text, result)

    def saved(self, path: Path, text: str, result: Any) -> None:
        self.saving = False
        if result.ok and path == self.path:
            self.saved_text = text  # what was written; typing since then stays unsaved
            kept = f" (previous version kept as {backup_path(path).name})" if backup_path(path).exists() else ""
            errors = sum(1 for f in self.findings if f.severity == "error")
            warning = f"; it has {errors} error(s)" if errors else ""
            self.notify(f"Saved {path}{kept}{warning}", severity="warning" if errors else "information")
            self.action_reload_files()
        elif not result.ok:
            self.notify(f"{result.message}. Your text is kept in the editor.", severity="error", timeout=10)
        self.update_title()
        self.console.after_save(result.ok)

    # ------------------------------------------------------------------ apply

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "apply":
            return any(offered_actions.apply_available(self.console.services, kind.resource) for kind in kinds_created_by_specs())
        return True

    def action_apply(self) -> None:
        result = self.last_result
        if self.path is None or result is None:
            self.notify("Open a spec first.", severity="warning")
            return
        if not result.ok:
            self.notify("The spec has errors: fix them before applying.", severity="error")
            return
        if self.dirty:
            self.notify("Save the spec before applying it.", severity="warning")
            return
        self.console.apply_documents(self.path, result.documents)
