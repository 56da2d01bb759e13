; uspslink: per-user Windows installer, built with Debian's makensis (NSIS 3.08).
; Tauri's own NSIS bundler cannot run in our cross-build (it downloads a DLL), so this script replaces it.
;
;   makensis -V2 -DVERSION=0.1.0 -DSRCDIR=<folder with uspslink.exe and WebView2Loader.dll> \
;     -DICON=<repo>/icons/icon.ico -DOUTFILE=<folder>/uspslink_0.1.0_x64-setup.exe src-tauri/windows/installer.nsi
;
; Give absolute paths: makensis changes into this script's folder before reading it, so a relative
; SRCDIR, ICON or OUTFILE would be taken relative to src-tauri/windows/.
; Silent use: setup.exe /S [/D=C:\folder]   and   uninstall.exe /S [/DELETEUSERDATA]
; Exit codes: 0 done, 1 cancelled by the user, 2 aborted (uspslink was running, WebView2 refused).

; A 64-bit installer for a 64-bit app: it reads the registry's native view and runs where uspslink runs.
Target amd64-unicode
SetCompressor /SOLID lzma

; ---- Inputs: fail early with a readable message rather than deep inside File/Icon.
!macro USPSLINK_REQUIRE NAME EXAMPLE
  !ifndef ${NAME}
    !error "installer.nsi needs -D${NAME}=... on the makensis command line (e.g. -D${NAME}=${EXAMPLE})"
  !endif
!macroend
!insertmacro USPSLINK_REQUIRE VERSION 0.1.0
!insertmacro USPSLINK_REQUIRE SRCDIR /abs/path/target/x86_64-pc-windows-gnu/release
!insertmacro USPSLINK_REQUIRE ICON /abs/path/icons/icon.ico
!insertmacro USPSLINK_REQUIRE OUTFILE /abs/path/uspslink_0.1.0_x64-setup.exe
; Forward slashes work for makensis on Linux and on Windows.
!if ! /FileExists "${SRCDIR}/uspslink.exe"
  !error "SRCDIR=${SRCDIR} has no uspslink.exe"
!endif
!if ! /FileExists "${SRCDIR}/WebView2Loader.dll"
  !error "SRCDIR=${SRCDIR} has no WebView2Loader.dll"
!endif
!if ! /FileExists "${ICON}"
  !error "ICON=${ICON} does not exist"
!endif

!define APP_KEY "Software\uspslink"
!define UNINST_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\uspslink"
!define SCHEME_KEY "Software\Classes\uspslink"
; The app's data folders are named after the bundle identifier in tauri.conf.json.
!define IDENTIFIER "org.uspslink.desktop"
; WebView2 Runtime's client GUID (Microsoft's documented detection keys).
!define WV2_CLIENT "Microsoft\EdgeUpdate\Clients\{F3017226-FE2A-4295-8BDF-00C3A9A7E4C5}"

!include "MUI2.nsh"
!include "LogicLib.nsh"
!include "FileFunc.nsh"
!include "Sections.nsh"

Name "uspslink"
OutFile "${OUTFILE}"
BrandingText "uspslink ${VERSION}"
; Per user, no UAC prompt: everything goes under the user's profile and HKCU.
RequestExecutionLevel user
InstallDir "$LOCALAPPDATA\Programs\uspslink"
InstallDirRegKey HKCU "${APP_KEY}" "InstallDir"
ManifestDPIAware true

Var WebView2 ; "present" or "missing", found in .onInit, recorded by the install section

; ---- Pages
!define MUI_ICON "${ICON}"
!define MUI_UNICON "${ICON}"
!define MUI_ABORTWARNING
!define MUI_COMPONENTSPAGE_NODESC

!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!define MUI_FINISHPAGE_RUN "$INSTDIR\uspslink.exe"
!define MUI_FINISHPAGE_RUN_TEXT "Run uspslink"
!insertmacro MUI_PAGE_FINISH

!insertmacro MUI_UNPAGE_CONFIRM
; The uninstaller's only visible component is the data checkbox (the main section is hidden).
!define MUI_PAGE_HEADER_TEXT "Your uspslink data"
!define MUI_PAGE_HEADER_SUBTEXT "Choose whether to keep your progress and logs."
!define MUI_COMPONENTSPAGE_TEXT_TOP "uspslink will be removed. Your progress file and logs are kept, so a later install carries on where you left off, unless you tick the box below."
!insertmacro MUI_UNPAGE_COMPONENTS
!insertmacro MUI_UNPAGE_INSTFILES

!insertmacro MUI_LANGUAGE "English"

; ---- Version resource (Explorer's Properties > Details); Windows wants four numbers.
VIProductVersion "${VERSION}.0"
VIFileVersion "${VERSION}.0"
VIAddVersionKey /LANG=${LANG_ENGLISH} "ProductName" "uspslink"
VIAddVersionKey /LANG=${LANG_ENGLISH} "ProductVersion" "${VERSION}"
VIAddVersionKey /LANG=${LANG_ENGLISH} "FileVersion" "${VERSION}"
VIAddVersionKey /LANG=${LANG_ENGLISH} "FileDescription" "uspslink ${VERSION} setup"
VIAddVersionKey /LANG=${LANG_ENGLISH} "CompanyName" "uspslink"
VIAddVersionKey /LANG=${LANG_ENGLISH} "LegalCopyright" "Copyright (C) uspslink"

; A running uspslink.exe cannot be deleted, so a failed Delete means "close the app first".
; Silent runs get the /SD answer (Cancel) and abort with exit code 2 instead of hanging.
!macro USPSLINK_DELETE_EXE_OR_ABORT
  retry_delete_exe:
  ClearErrors
  Delete "$INSTDIR\uspslink.exe"
  ${If} ${Errors}
    MessageBox MB_RETRYCANCEL|MB_ICONEXCLAMATION "uspslink is running.$\r$\n$\r$\nClose uspslink, then click Retry." /SD IDCANCEL IDRETRY retry_delete_exe
    DetailPrint "uspslink.exe is in use: uspslink is running"
    Abort "uspslink is running; close it and try again."
  ${EndIf}
!macroend

; Any one non-empty, non-"0.0.0.0" "pv" value means the WebView2 Runtime is installed.
!macro USPSLINK_CHECK_PV ROOT KEY
  ReadRegStr $0 ${ROOT} "${KEY}" "pv"
  ${If} $0 != ""
  ${AndIf} $0 != "0.0.0.0"
    StrCpy $WebView2 "present"
  ${EndIf}
!macroend

; ---- Install
Section "-Install"
  SetOutPath "$INSTDIR"
  ; Deleting first is the "is it running?" test; File would replace the exe anyway.
  !insertmacro USPSLINK_DELETE_EXE_OR_ABORT
  File "${SRCDIR}/uspslink.exe"
  File "${SRCDIR}/WebView2Loader.dll"
  WriteUninstaller "$INSTDIR\uninstall.exe"

  CreateShortcut "$SMPROGRAMS\uspslink.lnk" "$INSTDIR\uspslink.exe" "" "$INSTDIR\uspslink.exe" 0

  ; uspslink:// for this user: the sign-in service sends the browser back to the app through it.
  WriteRegStr HKCU "${SCHEME_KEY}" "" "URL:uspslink"
  WriteRegStr HKCU "${SCHEME_KEY}" "URL Protocol" ""
  WriteRegStr HKCU "${SCHEME_KEY}\DefaultIcon" "" '"$INSTDIR\uspslink.exe",0'
  WriteRegStr HKCU "${SCHEME_KEY}\shell\open\command" "" '"$INSTDIR\uspslink.exe" "%1"'

  WriteRegStr HKCU "${APP_KEY}" "InstallDir" "$INSTDIR"
  ; Recorded for tests and support; silent installs do not stop when WebView2 is missing.
  WriteRegStr HKCU "${APP_KEY}" "WebView2AtInstall" "$WebView2"
  DetailPrint "WebView2=$WebView2"

  ; Settings > Apps entry (per user, so HKCU).
  WriteRegStr HKCU "${UNINST_KEY}" "DisplayName" "uspslink"
  WriteRegStr HKCU "${UNINST_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKCU "${UNINST_KEY}" "Publisher" "uspslink"
  WriteRegStr HKCU "${UNINST_KEY}" "DisplayIcon" "$INSTDIR\uspslink.exe,0"
  WriteRegStr HKCU "${UNINST_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKCU "${UNINST_KEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegStr HKCU "${UNINST_KEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /S'
  WriteRegDWORD HKCU "${UNINST_KEY}" "NoModify" 1
  WriteRegDWORD HKCU "${UNINST_KEY}" "NoRepair" 1
  ; Measured after copying, in KB as Windows expects.
  ${GetSize} "$INSTDIR" "/S=0K" $0 $1 $2
  WriteRegDWORD HKCU "${UNINST_KEY}" "EstimatedSize" $0
SectionEnd

Function .onInit
  SetShellVarContext current
  StrCpy $WebView2 "missing"
  ; A 64-bit installer reads the native view: WOW6432Node is where the (32-bit) Edge updater
  ; records a machine-wide runtime, the plain path where a 64-bit one may.
  !insertmacro USPSLINK_CHECK_PV HKLM "SOFTWARE\WOW6432Node\${WV2_CLIENT}"
  !insertmacro USPSLINK_CHECK_PV HKLM "SOFTWARE\${WV2_CLIENT}"
  !insertmacro USPSLINK_CHECK_PV HKCU "Software\${WV2_CLIENT}"

  ; Interactive only: silent installs continue (the app itself tells the user at start).
  ${If} $WebView2 == "missing"
  ${AndIfNot} ${Silent}
    MessageBox MB_YESNO|MB_ICONEXCLAMATION "uspslink needs the Microsoft Edge WebView2 Runtime, which was not found on this computer. It comes with Windows 10 and 11 but may have been removed.$\r$\n$\r$\nGet it from https://developer.microsoft.com/microsoft-edge/webview2/ (choose the Evergreen Bootstrapper).$\r$\n$\r$\nInstall uspslink anyway?" IDYES wv2_anyway
    Abort
    wv2_anyway:
  ${EndIf}
FunctionEnd

; ---- Uninstall
; Hidden ("-"): still the uninstaller's main section, but not a checkbox on the components page.
Section "-Uninstall"
  !insertmacro USPSLINK_DELETE_EXE_OR_ABORT
  Delete "$INSTDIR\WebView2Loader.dll"
  Delete "$INSTDIR\uninstall.exe"
  Delete "$SMPROGRAMS\uspslink.lnk"

  ; Remove uspslink:// only if it still opens this copy: a developer build may have taken it over.
  ReadRegStr $0 HKCU "${SCHEME_KEY}\shell\open\command" ""
  StrCpy $1 '"$INSTDIR\uspslink.exe"'
  StrLen $2 $1
  StrCpy $0 $0 $2 ; StrCmp is case-insensitive, like Windows paths
  ${If} $0 == $1
    DeleteRegKey HKCU "${SCHEME_KEY}"
  ${Else}
    DetailPrint "uspslink:// opens another uspslink; left as it is"
  ${EndIf}

  DeleteRegKey HKCU "${UNINST_KEY}"
  DeleteRegKey HKCU "${APP_KEY}"
  ; Leave $INSTDIR as working folder, or Windows refuses to remove it.
  SetOutPath "$TEMP"
  RMDir "$INSTDIR" ; only if empty: never delete files we did not put there
SectionEnd

; Unticked by default: the progress file lets a reinstall carry on where the user left off.
Section /o "un.Also delete my uspslink data (progress file and logs)" SecUnData
  RMDir /r "$APPDATA\${IDENTIFIER}"      ; progress file (store)
  RMDir /r "$LOCALAPPDATA\${IDENTIFIER}" ; logs and the WebView2 cache
SectionEnd

Function un.onInit
  SetShellVarContext current
  ; Silent uninstalls have no components page: /DELETEUSERDATA ticks the box instead
  ; (interactively it only pre-ticks it).
  ${GetParameters} $0
  ${GetOptions} $0 "/DELETEUSERDATA" $1
  ${IfNot} ${Errors}
    !insertmacro SelectSection ${SecUnData}
  ${EndIf}
FunctionEnd
