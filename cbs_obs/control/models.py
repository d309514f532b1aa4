"""Request bodies of the control API as pydantic models: they validate shapes and bounds (so a huge
or deeply odd body is a 400, never a crash) and the OpenAPI document is generated from them. What
the names mean (classes, styles) is checked by the look and the engine, which know them."""
from __future__ import annotations

from typing import Annotated, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool

MAX_SPEC = 200  # a style spec is a name and a short argument
MAX_CLASS = 64
MAX_ASSIGNMENTS = 64

ClassName = Annotated[str, Field(min_length=1, max_length=MAX_CLASS)]
StyleSpec = Annotated[str, Field(min_length=1, max_length=MAX_SPEC, examples=["starry-blue", "blur:25"])]
Strength = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AssignmentIn(_Strict):
    cls: ClassName
    style: StyleSpec
    strength: Strength = 1.0


class MaskIn(_Strict):
    feather: Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)] = 0.0
    hard: StrictBool = False
    cutoff: Annotated[float, Field(ge=0, lt=0.5, allow_inf_nan=False)] = 0.02


class LookIn(_Strict):
    """A whole look; missing parts take their defaults."""

    assignments: Annotated[list[AssignmentIn], Field(max_length=MAX_ASSIGNMENTS)] = []
    mask: MaskIn = MaskIn()
    enabled: StrictBool = True


class AssignmentPatchIn(_Strict):
    style: Optional[StyleSpec] = None
    strength: Optional[Strength] = None


class MaskPatchIn(_Strict):
    feather: Optional[Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]] = None
    hard: Optional[StrictBool] = None
    cutoff: Optional[Annotated[float, Field(ge=0, lt=0.5, allow_inf_nan=False)]] = None


class LookPatchIn(_Strict):
    """Part of a look: ``assignments`` maps a class to a style, ``{style, strength}`` or null (remove)."""

    assignments: Annotated[dict[ClassName, Union[AssignmentPatchIn, StyleSpec, None]],
                           Field(max_length=MAX_ASSIGNMENTS)] = {}
    mask: Optional[MaskPatchIn] = None
    enabled: Optional[StrictBool] = None

    def as_patch(self) -> dict:
        """The fields the client sent, as Controller.patched takes them."""
        out: dict = {}
        fields = self.model_fields_set
        if "assignments" in fields:
            out["assignments"] = {k: (v.model_dump(exclude_unset=True) if isinstance(v, AssignmentPatchIn) else v)
                                  for k, v in self.assignments.items()}
        if "mask" in fields and self.mask is not None:
            out["mask"] = self.mask.model_dump(exclude_unset=True)
        if "enabled" in fields and self.enabled is not None:
            out["enabled"] = self.enabled
        return out


SceneTable = Annotated[dict[Annotated[str, Field(min_length=1, max_length=200)],
                            Annotated[str, Field(min_length=1, max_length=40)]], Field(max_length=500)]


class ErrorOut(BaseModel):
    error: str
    status: int
