"""VMB Score for Blender's Video Sequencer: a "VMB Score" sidebar panel with the engine's
knobs, and the operators bpy.ops.vmb.score_selection(), bpy.ops.vmb.score_timeline(),
bpy.ops.vmb.update_score() and bpy.ops.vmb.adapt_audio() (wait=True blocks until the
music is placed: scripts and batch runs).

The extension talks only to the VMB Score engine on this computer (its loopback HTTP
gateway); the shared client and flow (vmb_client.py, vmb_flow.py) are copied in from
plugins/common by the installer.
"""

import sys

import bpy
from bpy.app.handlers import persistent
from bpy.props import BoolProperty, StringProperty

from . import vmb_client as vc

# vmb_flow imports the client by its plain name (as in REAPER and Resolve): give it this
# copy (replacing the copy of an earlier enable of this extension, never a foreign module)
if getattr(sys.modules.get("vmb_client"), "__name__", vc.__name__) != "vmb_client":
    sys.modules["vmb_client"] = vc
from . import vmb_blender as vb  # noqa: E402

# the settings every panel has; the knobs' settings are added from the served knob table
# (vb.ensure_settings): a knob the engine adds shows here without a change to this file
BASE = {
    "start_engine": BoolProperty(
        name="Start the engine when needed",
        description="Run `vmb engine start` when no engine answers",
        default=True,
    ),
}


def _finish(op, flow, wait):
    if not wait:
        op.report({"INFO"}, "VMB Score: working… (see the VMB Score panel)")
        return {"FINISHED"}
    if flow.error:
        op.report({"ERROR"}, flow.error)
        return {"CANCELLED"}
    op.report({"INFO"}, flow.result_text.split("\n")[0] or "VMB Score: done")
    return {"FINISHED"}


def _score(op, context, mode):
    scene = context.scene
    props = getattr(scene, "vmb_score", None)
    try:
        flow = vb.run(scene, mode, op.wait, bool(props.start_engine) if props else True)
    except vc.PluginError as exc:
        op.report({"ERROR"}, exc.message)
        return {"CANCELLED"}
    except Exception as exc:  # noqa: BLE001 - a report, never a traceback
        op.report({"ERROR"}, f"VMB Score: something went wrong: {type(exc).__name__}: {exc}")
        return {"CANCELLED"}
    if flow.finished and flow.error:  # failed before the first wait, timer or not
        op.report({"ERROR"}, flow.error)
        return {"CANCELLED"}
    return _finish(op, flow, op.wait)


class VMB_OT_score_selection(bpy.types.Operator):
    """Generate music for the selected strips and place it on the "VMB Score" channel"""

    bl_idname = "vmb.score_selection"
    bl_label = "Score selection"
    wait: BoolProperty(name="Wait", description="Block until the stem is placed", default=False)

    def execute(self, context):
        return _score(self, context, "selection")


class VMB_OT_score_timeline(bpy.types.Operator):
    """Generate one cue per clip for the whole timeline and place them"""

    bl_idname = "vmb.score_timeline"
    bl_label = "Score whole timeline"
    wait: BoolProperty(name="Wait", description="Block until the stems are placed", default=False)

    def execute(self, context):
        return _score(self, context, "timeline")


class VMB_OT_adapt_audio(bpy.types.Operator):
    """Adapt the selected sound strip to the movie strip under it (whole bars cut or repeated;
    your strip is kept, muted)"""

    bl_idname = "vmb.adapt_audio"
    bl_label = "Adapt selected audio to the video clip"
    bl_options = {"REGISTER", "UNDO"}
    wait: BoolProperty(name="Wait", description="Block until the music is placed", default=False)

    def execute(self, context):
        return _score(self, context, "adapt")


class VMB_OT_update_score(bpy.types.Operator):
    """Update the earlier whole-timeline score to the current cut: kept cues stay, moved,
    re-fitted and new ones are placed, removed ones taken off the VMB Score channels"""

    bl_idname = "vmb.update_score"
    bl_label = "Update score to this cut"
    bl_options = {"REGISTER", "UNDO"}
    wait: BoolProperty(name="Wait", description="Block until the stems are placed", default=False)

    def execute(self, context):
        return _score(self, context, "conform")


class VMB_OT_cancel(bpy.types.Operator):
    """Cancel the running VMB Score job"""

    bl_idname = "vmb.cancel"
    bl_label = "Cancel"

    def execute(self, context):
        if not vb.cancel():
            self.report({"WARNING"}, "VMB Score is not working on anything.")
            return {"CANCELLED"}
        self.report({"INFO"}, "VMB Score: cancelling…")
        return {"FINISHED"}


class VMB_OT_refresh_knobs(bpy.types.Operator):
    """Read the knobs from the running engine"""

    bl_idname = "vmb.refresh_knobs"
    bl_label = "Load knobs from the engine"

    def execute(self, context):
        try:
            gw = vc.connect(vc.load_config(), timeout_s=5.0)
            vb.STATE["caps"] = gw.capabilities()
            vb.ensure_settings(BASE)
        except vc.PluginError as exc:
            self.report({"ERROR"}, exc.message)
            return {"CANCELLED"}
        except Exception as exc:  # noqa: BLE001 - a report, never a traceback
            self.report({"ERROR"}, f"VMB Score: {type(exc).__name__}: {exc}")
            return {"CANCELLED"}
        vb.redraw()
        return {"FINISHED"}


class VMB_OT_report(bpy.types.Operator):
    """Show a VMB Score message in Blender's report area (used by timer runs)"""

    bl_idname = "vmb.report"
    bl_label = "VMB Score message"
    bl_options = {"INTERNAL"}
    message: StringProperty()
    error: BoolProperty(default=False)

    def execute(self, context):
        self.report({"ERROR"} if self.error else {"INFO"}, self.message)
        return {"FINISHED"}

    def invoke(self, context, event):
        return self.execute(context)


class VMB_PT_panel(bpy.types.Panel):
    bl_label = "VMB Score"
    bl_idname = "VMB_PT_panel"
    bl_space_type = "SEQUENCE_EDITOR"
    bl_region_type = "UI"
    bl_category = "VMB Score"

    def draw(self, context):
        layout, props = self.layout, context.scene.vmb_score
        rows = vb.knob_rows()
        if not rows:
            layout.label(text="Knobs come from the engine:")
            layout.operator("vmb.refresh_knobs", icon="FILE_REFRESH")
        col = layout.column()
        for knob in rows:  # drawn from the table; a row not registered yet is skipped
            names = vb.slots(knob) if knob.get("type") == "multi" else [knob["name"]]
            if knob.get("bpm"):
                names.append(knob["name"] + "_bpm")
            for name in names:
                if hasattr(props, name):
                    col.prop(props, name)
        layout.prop(props, "start_engine")
        busy = vb.running() is not None
        row = layout.row(align=True)
        row.enabled = not busy
        row.operator("vmb.score_selection", icon="SOUND")
        row.operator("vmb.score_timeline", icon="SEQUENCE")
        edit = layout.column(align=True)
        edit.enabled = not busy
        edit.operator("vmb.update_score", icon="FILE_REFRESH")
        edit.operator("vmb.adapt_audio", icon="MOD_TIME")
        if busy:
            layout.label(text=vb.STATE["progress"] or "working…", icon="TIME")
            layout.operator("vmb.cancel", icon="CANCEL")
        if vb.STATE["message"]:
            box = layout.box()
            for i, line in enumerate(vb.STATE["message"].split("\n")[:6]):
                box.label(
                    text=line,
                    icon=("ERROR" if vb.STATE["error"] else "INFO") if not i else "BLANK1",
                )
        note = layout.column()
        note.scale_y = 0.7
        note.label(text="Talks only to the VMB Score engine on this computer")
        note.label(text="(loopback): Allow Online Access does not apply.")


@persistent
def _cancel_on_load(*_args):
    """Another file is opened: the job is cancelled (its timers end with the old file)."""
    vb.abandon("another file was opened")


CLASSES = (
    VMB_OT_score_selection,
    VMB_OT_score_timeline,
    VMB_OT_adapt_audio,
    VMB_OT_update_score,
    VMB_OT_cancel,
    VMB_OT_refresh_knobs,
    VMB_OT_report,
    VMB_PT_panel,
)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    vb.STATE["base"] = BASE
    vb.ensure_settings(BASE)
    bpy.app.handlers.load_pre.append(_cancel_on_load)


def unregister():
    vb.abandon("the extension was disabled")
    if sys.modules.get("vmb_client") is vc:
        del sys.modules["vmb_client"]
    if _cancel_on_load in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.remove(_cancel_on_load)
    vb.drop_settings()
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
