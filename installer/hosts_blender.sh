# Blender extension for install.sh (sourced by hosts.sh): the vmb_score extension folder in
# Blender's user extensions repository, and a zip for Blender's "Install from Disk".
# Files come from plugins/blender/files.txt (plugins/common stays their one source).
# Needs: ROOT, VENV, HOST_DIR, say(), put(), ensure_dir(), record(), write_config() from
# hosts.sh / install.sh. Also: ensure_blender_venv for --dev (bpy for the tests).

BLENDER_EXT_ID="vmb_score"
BLENDER_VENV="${VMB_BLENDER_VENV:-$ROOT/.venv-blender}"

blender_config_roots() {  # Blender's per-version user folders (4.2 and newer), one a line
  local base d v
  case "$(uname -s)" in
    Darwin) base="$HOME/Library/Application Support/Blender" ;;
    *) base="${XDG_CONFIG_HOME:-$HOME/.config}/blender" ;;
  esac
  [ -d "$base" ] || return 0
  for d in "$base"/*/; do
    v="$(basename "$d")"
    case "$v" in
      [0-9]*.[0-9]*) ;;
      *) continue ;;
    esac
    if [ "${v%%.*}" -gt 4 ] || { [ "${v%%.*}" -eq 4 ] && [ "${v#*.}" -ge 2 ]; }; then
      printf '%s\n' "${d%/}"
    fi
  done
}

blender_ext_dirs() {  # where the extension folder goes, one a line (none: zip only)
  if [ -n "${BLENDER_USER_EXTENSIONS:-}" ]; then
    printf '%s\n' "$BLENDER_USER_EXTENSIONS/user_default/$BLENDER_EXT_ID"
  elif [ -n "$HOST_DIR" ]; then
    printf '%s\n' "$HOST_DIR/blender/extensions/user_default/$BLENDER_EXT_ID"
  else
    blender_config_roots | while IFS= read -r root; do
      printf '%s\n' "$root/extensions/user_default/$BLENDER_EXT_ID"
    done
  fi
}

blender_files() {  # the relative paths in plugins/blender/files.txt
  grep -v '^[[:space:]]*\(#\|$\)' "$ROOT/plugins/blender/files.txt"
}

blender_zip_path() {
  if [ -n "$HOST_DIR" ]; then
    printf '%s' "$HOST_DIR/blender/$BLENDER_EXT_ID.zip"
  else
    printf '%s' "$(vmb_home_dir)/blender/$BLENDER_EXT_ID.zip"
  fi
}

install_blender() {
  local dest rel n=0 zip stage
  while IFS= read -r dest; do
    [ -n "$dest" ] || continue
    while IFS= read -r rel; do
      put "$ROOT/plugins/$rel" "$dest/$(basename "$rel")"
    done < <(blender_files)
    write_config "$dest/vmb_plugin.json"
    say "Blender: extension in $dest"
    n=$((n + 1))
  done < <(blender_ext_dirs)
  # the zip for "Install from Disk" (any Blender 4.2+, any machine): the same files
  zip="$(blender_zip_path)"
  stage="$(mktemp -d)"
  while IFS= read -r rel; do cp "$ROOT/plugins/$rel" "$stage/"; done < <(blender_files)
  local vmb="null"
  [ -x "$VENV/bin/vmb" ] && vmb="$(json_str "$VENV/bin/vmb")"
  printf '{\n  "vmb": %s,\n  "home": null,\n  "installed_from": %s\n}\n' \
    "$vmb" "$(json_str "$ROOT")" >"$stage/vmb_plugin.json"
  ensure_dir "$(dirname "$zip")"
  (cd "$stage" && "${PYTHON:-python3}" -m zipfile -c "$zip" ./*) || {
    rm -rf "$stage"; say "Blender: could not write $zip"; return 1
  }
  rm -rf "$stage"
  record file "$zip"
  if ((n)); then
    say "  enable it in Blender: Edit > Preferences > Add-ons > 'VMB Score' (restart Blender first)"
  else
    say "Blender: no Blender 4.2+ user folder found. In Blender: Edit > Preferences >"
    say "  Get Extensions > (menu at the top right) > Install from Disk... > $zip"
  fi
  say "  then: Video Sequencer > sidebar (N) > 'VMB Score' tab"
}

ensure_blender_venv() {  # --dev: bpy in its own venv (its numpy pin differs from the engine's)
  local py="${PYTHON:-python3}" stamp
  if ! "$py" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
    if command -v python3.11 >/dev/null 2>&1; then
      py=python3.11
    else
      say "Blender tests: bpy 5.0 needs CPython 3.11 (not found); the Blender test will not run"
      return 0
    fi
  fi
  stamp="$BLENDER_VENV/.vmb-$(cksum <"$ROOT/requirements/blender.txt" | cut -d' ' -f1)"
  if [ -f "$stamp" ] && "$BLENDER_VENV/bin/python" -c "import bpy" 2>/dev/null; then
    say "Blender test environment up to date ($BLENDER_VENV)"
    return 0
  fi
  [ -x "$BLENDER_VENV/bin/python" ] || "$py" -m venv "$BLENDER_VENV"
  say "installing bpy into $BLENDER_VENV (Blender as a module, ~370 MB; pip caches it)"
  "$BLENDER_VENV/bin/python" -m pip --disable-pip-version-check -q install \
    -r "$ROOT/requirements/blender.txt"
  rm -f "$BLENDER_VENV"/.vmb-*
  touch "$stamp"
}
