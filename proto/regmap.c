/* proto/regmap.c — the register map table (the single source) and its generators. */
#include "regmap.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

#define RO SF_ACC_R
#define RW SF_ACC_RW
#define WO SF_ACC_W

/* Blocks start on round addresses with room to grow after each; see REGISTERS.md. */
static const sf_reg_t regmap[SF_R_COUNT] = {
    /* ---- input registers 0-99: identity ---- */
    {SF_R_PROTOCOL_VERSION, "protocol_version", SF_TBL_INPUT, 0, 1, SF_RT_U16, "", RO, 1, 65535,
     "Register map version (SF_REGMAP_VERSION); a client refuses to talk to a unit whose "
     "version it does not know"},
    {SF_R_UNIT_INDEX, "unit_index", SF_TBL_INPUT, 1, 1, SF_RT_U16, "", RO, 0, 65535,
     "Index of this unit in its host (0-based, scenario order of the hosted units)"},
    {SF_R_N_PHASES, "n_phases", SF_TBL_INPUT, 2, 1, SF_RT_U16, "", RO, 0, 16,
     "Number of phases configured (phase numbers 1..n_phases)"},
    {SF_R_N_RINGS, "n_rings", SF_TBL_INPUT, 3, 1, SF_RT_U16, "", RO, 0, 4,
     "Number of rings configured"},
    {SF_R_N_SG, "n_sg", SF_TBL_INPUT, 4, 1, SF_RT_U16, "", RO, 0, 32,
     "Number of signal groups configured (sg_lamp elements in use)"},
    {SF_R_N_DET, "n_det", SF_TBL_INPUT, 5, 1, SF_RT_U16, "", RO, 0, 64,
     "Number of detectors configured (det_presence elements in use)"},
    {SF_R_N_PLANS, "n_plans", SF_TBL_INPUT, 6, 1, SF_RT_U16, "", RO, 0, 16,
     "Number of timing plans stored"},
    {SF_R_UPTIME, "uptime", SF_TBL_INPUT, 8, 1, SF_RT_U32, "0.1 s", RO, 0, 4294967295LL,
     "Unit time since start (ticks of 0.1 s), high word at address 8"},
    {SF_R_UNIT_ID, "unit_id", SF_TBL_INPUT, 16, 16, SF_RT_ASCII, "", RO, 0, 65535,
     "Intersection id from the scenario, ASCII, two characters per register, NUL padded"},

    /* ---- input registers 100-199: control status ---- */
    {SF_R_CONTROL_MODE, "control_mode", SF_TBL_INPUT, 100, 1, SF_RT_ENUM, "", RO, 0x10, 0x33,
     "Control mode, GB/T 20999 codes: 0x10 centre fixed time, 0x11 centre actuated, 0x12 "
     "centre coordinated, 0x20-0x22 the same under local control (fallback or mode_command "
     "6), 0x31 flash (also start-up flash and a latched fault), 0x32 all-red (also start-up "
     "all-red), 0x33 all-off"},
    {SF_R_ACTIVE_PLAN, "active_plan", SF_TBL_INPUT, 101, 1, SF_RT_U16, "", RO, 0, 16,
     "Plan number running (or that will run after start-up, flash or all-red), 1..16"},
    {SF_R_PENDING_PLAN, "pending_plan", SF_TBL_INPUT, 102, 1, SF_RT_U16, "", RO, 0, 16,
     "Plan number selected and waiting for a safe point to start, 0 none"},
    {SF_R_CYCLE_TIMER, "cycle_timer", SF_TBL_INPUT, 103, 1, SF_RT_U16, "0.1 s", RO, 0, 65535,
     "Time since the start of the current cycle (local cycle timer)"},
    {SF_R_COORD_IN_SYNC, "coord_in_sync", SF_TBL_INPUT, 104, 1, SF_RT_U16, "", RO, 0, 1,
     "1 when coordinated and the cycle timer agrees with the offset (no transition running)"},
    {SF_R_HEARTBEAT_ECHO, "heartbeat_echo", SF_TBL_INPUT, 105, 1, SF_RT_U16, "", RO, 0, 65535,
     "Last value written to heartbeat"},
    {SF_R_LOCAL_FALLBACK, "local_fallback", SF_TBL_INPUT, 106, 1, SF_RT_U16, "", RO, 0, 1,
     "1 while the unit runs its local plan because the centre heartbeat was lost"},
    {SF_R_FAULT_CODE, "fault_code", SF_TBL_INPUT, 107, 1, SF_RT_ENUM, "", RO, 0, 0xFF,
     "GB/T 20999 fault code: 0 none, 0x10 green conflict, 0x11 green and red together, "
     "0x20 dark group, 0x21 yellow cut short, 0x22 red clear / min green / ped clear cut "
     "short (these latch), 0x30 centre heartbeat lost (shown while in fallback, not latched)"},
    {SF_R_FAULT_LATCHED, "fault_latched", SF_TBL_INPUT, 108, 1, SF_RT_U16, "", RO, 0, 1,
     "1 while the conflict monitor holds the unit in flash; cleared by fault_reset"},
    {SF_R_HEARTBEAT_AGE, "heartbeat_age", SF_TBL_INPUT, 109, 1, SF_RT_U16, "0.1 s", RO, 0, 65535,
     "Time since the last heartbeat write (saturates at 65535)"},
    {SF_R_TOD, "tod", SF_TBL_INPUT, 110, 1, SF_RT_U32, "0.1 s", RO, 0, 863999,
     "Unit time of day (0.1 s after midnight), high word at address 110"},
    {SF_R_PHASE_STATUS_REDS, "phase_status_reds", SF_TBL_INPUT, 140, 1, SF_RT_BITMASK16, "", RO, 0,
     65535, "NTCIP phaseStatusGroupReds: bit i = phase i+1 shows red"},
    {SF_R_PHASE_STATUS_YELLOWS, "phase_status_yellows", SF_TBL_INPUT, 141, 1, SF_RT_BITMASK16, "",
     RO, 0, 65535, "NTCIP phaseStatusGroupYellows"},
    {SF_R_PHASE_STATUS_GREENS, "phase_status_greens", SF_TBL_INPUT, 142, 1, SF_RT_BITMASK16, "", RO,
     0, 65535, "NTCIP phaseStatusGroupGreens"},
    {SF_R_PHASE_STATUS_DONT_WALKS, "phase_status_dont_walks", SF_TBL_INPUT, 143, 1, SF_RT_BITMASK16,
     "", RO, 0, 65535, "NTCIP phaseStatusGroupDontWalks"},
    {SF_R_PHASE_STATUS_PED_CLEARS, "phase_status_ped_clears", SF_TBL_INPUT, 144, 1, SF_RT_BITMASK16,
     "", RO, 0, 65535, "NTCIP phaseStatusGroupPedClears"},
    {SF_R_PHASE_STATUS_WALKS, "phase_status_walks", SF_TBL_INPUT, 145, 1, SF_RT_BITMASK16, "", RO,
     0, 65535, "NTCIP phaseStatusGroupWalks"},
    {SF_R_PHASE_STATUS_VEH_CALLS, "phase_status_veh_calls", SF_TBL_INPUT, 146, 1, SF_RT_BITMASK16,
     "", RO, 0, 65535, "NTCIP phaseStatusGroupVehCalls"},
    {SF_R_PHASE_STATUS_PED_CALLS, "phase_status_ped_calls", SF_TBL_INPUT, 147, 1, SF_RT_BITMASK16,
     "", RO, 0, 65535, "NTCIP phaseStatusGroupPedCalls"},
    {SF_R_PHASE_STATUS_ON, "phase_status_on", SF_TBL_INPUT, 148, 1, SF_RT_BITMASK16, "", RO, 0,
     65535, "NTCIP phaseStatusGroupPhaseOns (phase timing: green, yellow or red clear)"},
    {SF_R_PHASE_STATUS_NEXT, "phase_status_next", SF_TBL_INPUT, 149, 1, SF_RT_BITMASK16, "", RO, 0,
     65535, "NTCIP phaseStatusGroupPhaseNexts (committed to be served next)"},

    /* ---- input registers 200-299: signal groups ---- */
    {SF_R_SG_LAMP, "sg_lamp", SF_TBL_INPUT, 200, 32, SF_RT_LAMP, "", RO, 0x00, 0x40,
     "Lamp state per signal group, GB/T 20999 codes: 0x01 off, 0x10 red, 0x11 red "
     "flashing, 0x20 green, 0x21 green flashing, 0x30 yellow, 0x31 yellow flashing; "
     "0 = group not configured"},
    {SF_R_SG_TIME_REMAINING, "sg_time_remaining", SF_TBL_INPUT, 240, 32, SF_RT_U16, "0.1 s", RO, 0,
     65535,
     "Time left in the group's current colour (an upper bound for an actuated green; 0 = "
     "indefinite)"},

    /* ---- input registers 300-499: detector data ---- */
    {SF_R_DET_SEQ, "det_seq", SF_TBL_INPUT, 300, 1, SF_RT_U16, "", RO, 0, 65535,
     "Sequence number of the last completed detector interval (wraps at 65535); volume and "
     "occupancy belong to it"},
    {SF_R_DET_INTERVAL, "det_interval", SF_TBL_INPUT, 301, 1, SF_RT_U16, "s", RO, 0, 65535,
     "Length of a detector data interval"},
    {SF_R_DET_VOLUME, "det_volume", SF_TBL_INPUT, 320, 64, SF_RT_U16, "veh", RO, 0, 65535,
     "Vehicles counted per detector in the last completed interval"},
    {SF_R_DET_OCCUPANCY, "det_occupancy", SF_TBL_INPUT, 400, 64, SF_RT_U16, "0.1 %", RO, 0, 1000,
     "Occupancy per detector in the last completed interval"},

    /* ---- input registers 500-599: priority request status ---- */
    {SF_R_PRIO_STATUS_ID, "prio_status_id", SF_TBL_INPUT, 500, 8, SF_RT_U16, "", RO, 0, 65535,
     "Request id held in each status slot (0 = empty slot)"},
    {SF_R_PRIO_STATUS_STATE, "prio_status_state", SF_TBL_INPUT, 510, 8, SF_RT_ENUM, "", RO, 0, 6,
     "State per slot: 0 free, 1 queued, 2 active (being served), 3 served (checked "
     "out after its green), 4 refused, 5 expired, 6 cancelled (checked out before "
     "service)"},
    {SF_R_PRIO_STATUS_REASON, "prio_status_reason", SF_TBL_INPUT, 520, 8, SF_RT_ENUM, "", RO, 0, 4,
     "Refusal reason per slot: 0 none, 1 lockout after a grant, 2 mode (flash, all-red, "
     "start-up, fault or priority disabled), 3 phase omitted or not in the plan, 4 "
     "pre-empted by a higher level"},
    {SF_R_PRIO_STATUS_PHASE, "prio_status_phase", SF_TBL_INPUT, 530, 8, SF_RT_U16, "", RO, 0, 16,
     "Phase requested per slot"},

    /* ---- input registers 600-699: plan read-back and download result ---- */
    {SF_R_PLAN_RD_NUMBER, "plan_rd_number", SF_TBL_INPUT, 600, 1, SF_RT_U16, "", RO, 0, 16,
     "Plan shown in plan_rd_* (= plan_rd_select), 0 when that plan is not stored"},
    {SF_R_PLAN_RD_CYCLE, "plan_rd_cycle", SF_TBL_INPUT, 601, 1, SF_RT_U16, "0.1 s", RO, 0, 65535,
     "Cycle of the plan selected by plan_rd_select"},
    {SF_R_PLAN_RD_OFFSET, "plan_rd_offset", SF_TBL_INPUT, 602, 1, SF_RT_U16, "0.1 s", RO, 0, 65535,
     "Offset of the selected plan"},
    {SF_R_PLAN_RD_COORD_PHASES, "plan_rd_coord_phases", SF_TBL_INPUT, 603, 1, SF_RT_BITMASK16, "",
     RO, 0, 65535, "Coordinated phases of the selected plan (bit i = phase i+1)"},
    {SF_R_PLAN_RD_FORCE_MODE, "plan_rd_force_mode", SF_TBL_INPUT, 604, 1, SF_RT_ENUM, "", RO, 0, 1,
     "Force-off mode of the selected plan: 0 fixed, 1 floating"},
    {SF_R_PLAN_RD_SPLIT, "plan_rd_split", SF_TBL_INPUT, 610, 16, SF_RT_U16, "0.1 s", RO, 0, 65535,
     "Splits of the selected plan per phase"},
    {SF_R_PLAN_RD_SPLIT_MODE, "plan_rd_split_mode", SF_TBL_INPUT, 630, 16, SF_RT_ENUM, "", RO, 0, 4,
     "Split modes of the selected plan: 0 none, 1 min recall, 2 max recall, 3 ped "
     "recall, 4 omit"},
    {SF_R_PLAN_DL_STATUS, "plan_dl_status", SF_TBL_INPUT, 660, 1, SF_RT_ENUM, "", RO, 0, 2,
     "Result of the last plan_dl_commit: 0 none yet, 1 accepted, 2 refused"},
    {SF_R_PLAN_DL_ERROR, "plan_dl_error", SF_TBL_INPUT, 661, 1, SF_RT_U16, "", RO, 0, 65535,
     "Why the last plan download was refused: 0 accepted, 1 unsafe timing, 3 green "
     "conflict, 4 split below min green + yellow + red clear, 5 ring sums differ from the "
     "cycle, 8 fault latched, 22 a value out of range (EINVAL)"},

    /* ---- holding registers 0-99: commands ---- */
    {SF_R_HEARTBEAT, "heartbeat", SF_TBL_HOLDING, 0, 1, SF_RT_U16, "", RW, 0, 65535,
     "Centre heartbeat: the centre writes a changing value at least every heartbeat "
     "timeout; without it the unit falls back to its local plan"},
    {SF_R_MODE_COMMAND, "mode_command", SF_TBL_HOLDING, 1, 1, SF_RT_ENUM, "", RW, 1, 6,
     "Requested control mode: 1 fixed, 2 actuated, 3 coordinated, 4 flash, 5 all-red, 6 "
     "local; takes effect at a safe point; refused (03) in a latched fault or coordinated "
     "without a coordinated phase; reads the last accepted command"},
    {SF_R_PLAN_SELECT, "plan_select", SF_TBL_HOLDING, 2, 1, SF_RT_U16, "", RW, 1, 16,
     "Plan to run under centre control, 1..16; refused (03) if not stored, or coordinated "
     "and the plan has no coordinated phase; takes effect at a safe point; reads the "
     "running plan"},
    {SF_R_FAULT_RESET, "fault_reset", SF_TBL_HOLDING, 3, 1, SF_RT_U16, "", WO, 1, 1,
     "Write 1 to clear a latched conflict-monitor fault (the unit restarts with its "
     "start-up sequence)"},

    /* ---- holding registers 10-99: coordination of the running plan ---- */
    {SF_R_COORD_CYCLE, "coord_cycle", SF_TBL_HOLDING, 10, 1, SF_RT_U16, "0.1 s", RW, 300, 3000,
     "Cycle of the running plan; a write changes the running plan (validated as a plan "
     "download together with coord_offset and coord_split written in the same request)"},
    {SF_R_COORD_OFFSET, "coord_offset", SF_TBL_HOLDING, 11, 1, SF_RT_U16, "0.1 s", RW, 0, 3000,
     "Offset of the running plan: start of the coordinated green after the sync reference; "
     "below the cycle"},
    {SF_R_COORD_SPLIT, "coord_split", SF_TBL_HOLDING, 12, 16, SF_RT_U16, "0.1 s", RW, 0, 3000,
     "Split per phase of the running plan, including yellow and red clearance (0 = phase "
     "not used by the plan); each ring must still sum to the cycle"},
    {SF_R_COORD_SYNC, "coord_sync", SF_TBL_HOLDING, 28, 1, SF_RT_U32, "0.1 s", RW, 0, 863999,
     "Sync reference: time of day (0.1 s after midnight) at which cycle time 0 falls; high "
     "word at address 28, write both words in one request"},

    /* ---- holding registers 100-299: phase timing (NTCIP 1202 units), one contiguous run so
     * that related fields (min green and max, yellow and red clear) change in one request */
    {SF_R_PHASE_MIN_GREEN, "phase_min_green", SF_TBL_HOLDING, 100, 16, SF_RT_U16, "s", RW, 5, 255,
     "NTCIP phaseMinimumGreen per phase; below 5 s is refused"},
    {SF_R_PHASE_PASSAGE, "phase_passage", SF_TBL_HOLDING, 116, 16, SF_RT_U16, "0.1 s", RW, 0, 255,
     "NTCIP phasePassage (gap / vehicle extension) per phase"},
    {SF_R_PHASE_MAX1, "phase_max1", SF_TBL_HOLDING, 132, 16, SF_RT_U16, "s", RW, 5, 255,
     "NTCIP phaseMaximum1 per phase; not below min green"},
    {SF_R_PHASE_MAX2, "phase_max2", SF_TBL_HOLDING, 148, 16, SF_RT_U16, "s", RW, 5, 255,
     "NTCIP phaseMaximum2 per phase; not below min green"},
    {SF_R_PHASE_YELLOW, "phase_yellow", SF_TBL_HOLDING, 164, 16, SF_RT_U16, "0.1 s", RW, 30, 60,
     "NTCIP phaseYellowChange per phase; below 3 s is refused"},
    {SF_R_PHASE_RED_CLEAR, "phase_red_clear", SF_TBL_HOLDING, 180, 16, SF_RT_U16, "0.1 s", RW, 0,
     60, "NTCIP phaseRedClear per phase; above 6 s is refused"},
    {SF_R_PHASE_WALK, "phase_walk", SF_TBL_HOLDING, 196, 16, SF_RT_U16, "s", RW, 0, 60,
     "NTCIP phaseWalk per phase (0 = no pedestrian movement)"},
    {SF_R_PHASE_PED_CLEAR, "phase_ped_clear", SF_TBL_HOLDING, 212, 16, SF_RT_U16, "s", RW, 0, 60,
     "NTCIP phasePedestrianClear per phase (flashing don't walk)"},

    /* ---- holding registers 300-399: priority request mailbox ---- */
    {SF_R_PRIO_REQ_ID, "prio_req_id", SF_TBL_HOLDING, 300, 1, SF_RT_U16, "", RW, 1, 65535,
     "Mailbox: request id (the vehicle/run chosen by the centre)"},
    {SF_R_PRIO_REQ_LEVEL, "prio_req_level", SF_TBL_HOLDING, 301, 1, SF_RT_U16, "", RW, 1, 7,
     "Mailbox: priority level, 1 highest .. 7 lowest"},
    {SF_R_PRIO_REQ_PHASE, "prio_req_phase", SF_TBL_HOLDING, 302, 1, SF_RT_U16, "", RW, 1, 16,
     "Mailbox: phase requested"},
    {SF_R_PRIO_REQ_ETA, "prio_req_eta", SF_TBL_HOLDING, 303, 1, SF_RT_U16, "0.1 s", RW, 0, 6000,
     "Mailbox: estimated time of arrival at the stop line"},
    {SF_R_PRIO_REQ_TYPE, "prio_req_type", SF_TBL_HOLDING, 304, 1, SF_RT_ENUM, "", RW, 1, 2,
     "Mailbox: 1 check-in (new request, or new ETA for a known id), 2 check-out (served or "
     "cancelled)"},
    {SF_R_PRIO_REQ_COMMIT, "prio_req_commit", SF_TBL_HOLDING, 305, 1, SF_RT_U16, "", WO, 1, 1,
     "Write 1 to hand the mailbox (300-304) to the unit as one request; write 300-305 in "
     "one Write Multiple Registers so the request is taken whole; refused (03) if the "
     "unit refuses it"},

    /* ---- holding registers 400-499: timing plan download ---- */
    {SF_R_PLAN_DL_NUMBER, "plan_dl_number", SF_TBL_HOLDING, 400, 1, SF_RT_U16, "", RW, 1, 16,
     "Plan download buffer: plan number to store"},
    {SF_R_PLAN_DL_CYCLE, "plan_dl_cycle", SF_TBL_HOLDING, 401, 1, SF_RT_U16, "0.1 s", RW, 300, 3000,
     "Plan download buffer: cycle length"},
    {SF_R_PLAN_DL_OFFSET, "plan_dl_offset", SF_TBL_HOLDING, 402, 1, SF_RT_U16, "0.1 s", RW, 0, 3000,
     "Plan download buffer: offset (must be below the cycle)"},
    {SF_R_PLAN_DL_COORD_PHASES, "plan_dl_coord_phases", SF_TBL_HOLDING, 403, 1, SF_RT_BITMASK16, "",
     RW, 0, 65535, "Plan download buffer: coordinated phases (bit i = phase i+1)"},
    {SF_R_PLAN_DL_FORCE_MODE, "plan_dl_force_mode", SF_TBL_HOLDING, 404, 1, SF_RT_ENUM, "", RW, 0,
     1, "Plan download buffer: force-off mode, 0 fixed, 1 floating"},
    {SF_R_PLAN_DL_SPLIT, "plan_dl_split", SF_TBL_HOLDING, 405, 16, SF_RT_U16, "0.1 s", RW, 0, 3000,
     "Plan download buffer: split per phase (includes yellow and red clearance)"},
    {SF_R_PLAN_DL_SPLIT_MODE, "plan_dl_split_mode", SF_TBL_HOLDING, 421, 16, SF_RT_ENUM, "", RW, 0,
     4,
     "Plan download buffer: split mode per phase: 0 none, 1 min recall, 2 max recall, 3 "
     "ped recall, 4 omit"},
    {SF_R_PLAN_DL_COMMIT, "plan_dl_commit", SF_TBL_HOLDING, 437, 1, SF_RT_U16, "", WO, 1, 1,
     "Write 1 to make the unit validate the buffer (400-436) as one plan and store it, or "
     "refuse it with exception 03 (green conflict, split below min green + yellow + red "
     "clear, ring not summing to the cycle); writing 400-437 in one request is atomic"},
    {SF_R_PLAN_RD_SELECT, "plan_rd_select", SF_TBL_HOLDING, 480, 1, SF_RT_U16, "", RW, 1, 16,
     "Plan to show in the plan_rd_* input registers"},

    /* ---- coils 0-199: phase control (NTCIP phaseControlGroup) ---- */
    {SF_R_PHASE_CALL, "phase_call", SF_TBL_COIL, 0, 16, SF_RT_BOOL, "", RW, 0, 1,
     "Vehicle call per phase (NTCIP phaseControlGroupVehCall): writing 1 places a call "
     "kept until the phase is served (writing 0 does nothing); reads the calls pending"},
    {SF_R_PHASE_PED_CALL, "phase_ped_call", SF_TBL_COIL, 16, 16, SF_RT_BOOL, "", RW, 0, 1,
     "Pedestrian call per phase (phaseControlGroupPedCall): writing 1 places a call kept "
     "until served (writing 0 does nothing); reads the pedestrian calls pending"},
    {SF_R_PHASE_HOLD, "phase_hold", SF_TBL_COIL, 32, 16, SF_RT_BOOL, "", RW, 0, 1,
     "Hold per phase (phaseControlGroupHold): a green phase stays green while 1; refused "
     "(03) in coordinated mode, where the coordinator owns holds"},
    {SF_R_PHASE_FORCE_OFF, "phase_force_off", SF_TBL_COIL, 48, 16, SF_RT_BOOL, "", RW, 0, 1,
     "Force-off per phase (phaseControlGroupForceOff): ends its green once min green (and "
     "walk + ped clear) is served; refused (03) in coordinated mode"},
    {SF_R_PHASE_OMIT, "phase_omit", SF_TBL_COIL, 64, 16, SF_RT_BOOL, "", RW, 0, 1,
     "Omit per phase (phaseControlGroupPhaseOmit): the phase is not served while 1 (one "
     "that is timing finishes normally)"},
    /* ---- discrete inputs 0-99: detectors ---- */
    {SF_R_DET_PRESENCE, "det_presence", SF_TBL_DISCRETE, 0, 64, SF_RT_BOOL, "", RO, 0, 1,
     "Detector presence per detector (1 = occupied), as the unit sees it this tick"},

    /* ---- map version 2: external detection (a HIL simulator or a remote detector rack
     * drives the unit's detector inputs); appended, version 1 addresses unchanged ---- */
    {SF_R_DET_INPUT_ENABLE, "det_input_enable", SF_TBL_HOLDING, 500, 1, SF_RT_U16, "", RW, 0, 1,
     "(v2) External detection: 1 = the unit takes detector presence from det_input instead "
     "of its own detector inputs; 0 (at start-up) = its own inputs, det_input ignored"},
    {SF_R_DET_INPUT, "det_input", SF_TBL_COIL, 100, 64, SF_RT_BOOL, "", RW, 0, 1,
     "(v2) External presence per detector (1 = occupied), used while det_input_enable is 1 "
     "(kept, unused, while it is 0); 1 for a detector the unit does not have is refused "
     "(03); reads the values last written"},

    /* ---- map version 3: the poll image (regmap.h sf_poll_image_layout_t); appended,
     * version 1 and 2 addresses unchanged ---- */
    {SF_R_POLL_IMAGE_LEN, "poll_image_len", SF_TBL_INPUT, 7, 1, SF_RT_U16, "", RO, 0,
     SF_POLL_IMAGE_MAX,
     "(v3) Registers in this unit's poll_image: 56 + 2 n_sg + 2 n_det + ceil(n_det / 16); "
     "0 (a version 1 or 2 unit) = no image"},
    {SF_R_POLL_IMAGE, "poll_image", SF_TBL_INPUT, 700, SF_POLL_IMAGE_MAX, SF_RT_U16, "", RO, 0,
     65535,
     "(v3) Poll image: copies of everything a full poll reads, in one block (layout below the "
     "tables); read it in requests of at most 125 registers"},

    /* ---- map version 4: the poll image again, as holding registers, so that one FC 23
     * (read/write multiple registers) writes the heartbeat and reads the image; appended,
     * earlier addresses unchanged ---- */
    {SF_R_POLL_IMAGE_RW, "poll_image_rw", SF_TBL_HOLDING, 700, SF_POLL_IMAGE_MAX, SF_RT_U16, "", RO,
     0, 65535,
     "(v4) The poll image as holding registers (same layout and values as `poll_image`), "
     "read-only (a write is refused, 02): one FC 23 writes `heartbeat` and reads it, and the "
     "image it returns is the one from before that write (section below the tables)"},
};

const sf_reg_t *sf_regmap_table(size_t *n)
{
    if (n)
        *n = SF_R_COUNT;
    return regmap;
}

const sf_reg_t *sf_regmap_get(sf_reg_id_t id)
{
    if ((int)id < 0 || id >= SF_R_COUNT) {
        errno = EINVAL;
        return NULL;
    }
    return &regmap[id];
}

const sf_reg_t *sf_regmap_by_name(const char *name)
{
    if (name)
        for (size_t i = 0; i < SF_R_COUNT; i++)
            if (strcmp(regmap[i].name, name) == 0)
                return &regmap[i];
    errno = ENOENT;
    return NULL;
}

uint16_t sf_regmap_since(const sf_reg_t *r)
{
    /* Entries are only ever appended: ids from the first entry of a version on are of it. */
    return !r                               ? 0
           : r->id >= SF_R_POLL_IMAGE_RW    ? 4
           : r->id >= SF_R_POLL_IMAGE_LEN   ? 3
           : r->id >= SF_R_DET_INPUT_ENABLE ? 2
                                            : 1;
}

int sf_regmap_image_layout(uint16_t n_sg, uint16_t n_det, sf_poll_image_layout_t *out)
{
    if (!out || n_sg > 32 || n_det > 64) {
        errno = EINVAL;
        return -1;
    }
    /* The fixed sections first, then the ones sized by the identity counts. */
    out->status = 0;
    out->phase_status = 12;
    out->lamp = 22;
    out->remaining = (uint16_t)(out->lamp + n_sg);
    out->prio = (uint16_t)(out->remaining + n_sg);
    out->det = (uint16_t)(out->prio + 32);
    out->presence = (uint16_t)(out->det + 2);
    out->n_presence = (uint16_t)((n_det + 15) / 16);
    out->volume = (uint16_t)(out->presence + out->n_presence);
    out->occupancy = (uint16_t)(out->volume + n_det);
    out->len = (uint16_t)(out->occupancy + n_det);
    return 0;
}

uint16_t sf_regmap_width(const sf_reg_t *r)
{
    return r && r->type == SF_RT_U32 ? 2 : 1;
}

uint16_t sf_regmap_span(const sf_reg_t *r)
{
    return r ? (uint16_t)(r->count * sf_regmap_width(r)) : 0;
}

const sf_reg_t *sf_regmap_at(sf_reg_table_t t, uint16_t address, uint16_t *elem, uint16_t *word)
{
    for (size_t i = 0; i < SF_R_COUNT; i++) {
        const sf_reg_t *r = &regmap[i];
        if (r->table != t || address < r->address ||
            (uint32_t)address >= (uint32_t)r->address + sf_regmap_span(r))
            continue;
        uint16_t off = (uint16_t)(address - r->address);
        if (elem)
            *elem = (uint16_t)(off / sf_regmap_width(r));
        if (word)
            *word = (uint16_t)(off % sf_regmap_width(r));
        return r;
    }
    errno = ENOENT;
    return NULL;
}

uint16_t sf_regmap_table_size(sf_reg_table_t t)
{
    uint32_t end = 0;
    for (size_t i = 0; i < SF_R_COUNT; i++) {
        uint32_t e = (uint32_t)regmap[i].address + sf_regmap_span(&regmap[i]);
        if (regmap[i].table == t && e > end)
            end = e;
    }
    return end > 65535 ? 65535 : (uint16_t)end;
}

const char *sf_regmap_table_name(sf_reg_table_t t)
{
    static const char *const names[SF_TBL_N] = {"coil", "discrete", "input", "holding"};
    return (int)t >= 0 && t < SF_TBL_N ? names[t] : NULL;
}

const char *sf_regmap_type_name(sf_reg_type_t t)
{
    static const char *const names[] = {"bool",      "u16",  "s16",  "u32",
                                        "bitmask16", "enum", "lamp", "ascii"};
    return (int)t >= 0 && (size_t)t < sizeof names / sizeof names[0] ? names[t] : NULL;
}

const char *sf_regmap_access_name(sf_reg_access_t a)
{
    switch (a) {
    case SF_ACC_R:
        return "r";
    case SF_ACC_W:
        return "w";
    case SF_ACC_RW:
        return "rw";
    }
    return NULL;
}

static int fail(char *err, size_t len, const char *fmt, ...)
{
    if (err && len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, len, fmt, ap);
        va_end(ap);
    }
    errno = EINVAL;
    return -1;
}

int sf_regmap_check(char *err, size_t len)
{
    for (size_t i = 0; i < SF_R_COUNT; i++) {
        const sf_reg_t *r = &regmap[i];
        if ((size_t)r->id != i)
            return fail(err, len, "entry %zu (%s): id %d out of order", i, r->name ? r->name : "?",
                        (int)r->id);
        if (!r->name || !r->name[0] || !r->desc || !r->desc[0] || !r->unit)
            return fail(err, len, "entry %zu: name, unit and description are required", i);
        if (!sf_regmap_table_name(r->table) || !sf_regmap_type_name(r->type) ||
            !sf_regmap_access_name(r->access))
            return fail(err, len, "%s: bad table, type or access", r->name);
        if (r->count == 0)
            return fail(err, len, "%s: count is 0", r->name);
        if ((uint32_t)r->address + sf_regmap_span(r) > 65536)
            return fail(err, len, "%s: runs past address 65535", r->name);
        if (r->min > r->max)
            return fail(err, len, "%s: min %lld > max %lld", r->name, (long long)r->min,
                        (long long)r->max);
        int is_bit = r->table == SF_TBL_COIL || r->table == SF_TBL_DISCRETE;
        if (is_bit != (r->type == SF_RT_BOOL))
            return fail(err, len, "%s: type %s in table %s", r->name, sf_regmap_type_name(r->type),
                        sf_regmap_table_name(r->table));
        int64_t lo = 0, hi = 65535;
        if (r->type == SF_RT_BOOL)
            hi = 1;
        else if (r->type == SF_RT_S16)
            lo = -32768, hi = 32767;
        else if (r->type == SF_RT_U32)
            hi = 4294967295LL;
        if (r->min < lo || r->max > hi)
            return fail(err, len, "%s: range %lld..%lld does not fit type %s", r->name,
                        (long long)r->min, (long long)r->max, sf_regmap_type_name(r->type));
        if ((r->table == SF_TBL_DISCRETE || r->table == SF_TBL_INPUT) && r->access != SF_ACC_R)
            return fail(err, len, "%s: table %s is read-only but access is %s", r->name,
                        sf_regmap_table_name(r->table), sf_regmap_access_name(r->access));
        for (size_t j = 0; j < i; j++) {
            const sf_reg_t *o = &regmap[j];
            if (strcmp(o->name, r->name) == 0)
                return fail(err, len, "%s: name used twice", r->name);
            if (o->table == r->table && r->address < o->address + sf_regmap_span(o) &&
                o->address < r->address + sf_regmap_span(r))
                return fail(err, len, "%s overlaps %s in table %s", r->name, o->name,
                            sf_regmap_table_name(r->table));
        }
    }
    return 0;
}

/* One CSV field, quoted when it holds a comma, quote or newline (RFC 4180). */
static int csv_field(FILE *out, const char *s, int last)
{
    int rc;
    if (strpbrk(s, ",\"\n")) {
        rc = fputc('"', out) == EOF ? -1 : 0;
        for (const char *p = s; *p && rc == 0; p++)
            if ((*p == '"' && fputc('"', out) == EOF) || fputc(*p, out) == EOF)
                rc = -1;
        if (rc == 0 && fputc('"', out) == EOF)
            rc = -1;
    } else {
        rc = fputs(s, out) == EOF ? -1 : 0;
    }
    if (rc == 0 && fputc(last ? '\n' : ',', out) == EOF)
        rc = -1;
    return rc;
}

int sf_regmap_write_csv(FILE *out)
{
    if (!out) {
        errno = EINVAL;
        return -1;
    }
    if (fputs("name,table,address,count,type,unit,access,min,max,description\n", out) == EOF)
        return -1;
    for (size_t i = 0; i < SF_R_COUNT; i++) {
        const sf_reg_t *r = &regmap[i];
        char addr[8], count[8], min[24], max[24];
        snprintf(addr, sizeof addr, "%u", (unsigned)r->address);
        snprintf(count, sizeof count, "%u", (unsigned)r->count);
        snprintf(min, sizeof min, "%lld", (long long)r->min);
        snprintf(max, sizeof max, "%lld", (long long)r->max);
        if (csv_field(out, r->name, 0) || csv_field(out, sf_regmap_table_name(r->table), 0) ||
            csv_field(out, addr, 0) || csv_field(out, count, 0) ||
            csv_field(out, sf_regmap_type_name(r->type), 0) || csv_field(out, r->unit, 0) ||
            csv_field(out, sf_regmap_access_name(r->access), 0) || csv_field(out, min, 0) ||
            csv_field(out, max, 0) || csv_field(out, r->desc, 1))
            return -1;
    }
    return ferror(out) ? -1 : 0;
}

/* The 1-based reference of an address in the classic Modicon convention. */
static long ref1(const sf_reg_t *r, uint32_t address)
{
    static const long base[SF_TBL_N] = {1, 10001, 30001, 40001};
    return base[r->table] + (long)address;
}

int sf_regmap_write_md(FILE *out)
{
    if (!out) {
        errno = EINVAL;
        return -1;
    }
    static const char *const titles[SF_TBL_N] = {
        "Coils (FC 1 read, FC 5 / 15 write)", "Discrete inputs (FC 2 read)",
        "Input registers (FC 4 read)",
        "Holding registers (FC 3 read, FC 6 / 16 write, FC 23 read/write)"};
    fprintf(out,
            "# sigflow signal unit: Modbus register map, version %d\n\n"
            "Generated from `proto/regmap.c` by `sigflow regmap --md`; do not edit by hand\n"
            "(`tests/test_regmap.c` fails when this file is stale). Machine-readable copy:\n"
            "`proto/registers.csv`.\n\n"
            "- **address** is the 0-based PDU address on the wire (libmodbus, pymodbus, the\n"
            "  controller). **ref** is the classic 1-based reference (`0xxxx` coils, `1xxxx`\n"
            "  discrete inputs, `3xxxx` input registers, `4xxxx` holding registers): the\n"
            "  register number inside its table is address + 1, which is what `mbpoll` expects\n"
            "  by default (`mbpoll -r 1` reads address 0; `mbpoll -0 -r 0` reads it too).\n"
            "- **count** is the number of values; a `u32` value spans two registers, high word\n"
            "  first; an `ascii` entry packs two characters per register, high byte first.\n"
            "- Per-phase entries: element 0 = phase 1. Per-group and per-detector entries follow\n"
            "  the scenario's order. `bitmask16`: bit i = phase i + 1.\n"
            "- Reads may span gaps (gaps read 0); a write touching an address that is not a\n"
            "  writable entry is refused with exception 02 (ILLEGAL DATA ADDRESS); a value out\n"
            "  of range or refused by the unit's safety rules gets exception 03 (ILLEGAL DATA\n"
            "  VALUE). A refused request changes nothing, also when it writes several\n"
            "  registers. A client outside the unit's write allow-list gets exception 01\n"
            "  (ILLEGAL FUNCTION) for every write function and can still read.\n"
            "- Gaps between blocks are reserved for later versions of the map. Version 2\n"
            "  appended external detection (`det_input_enable`, `det_input`, marked (v2)),\n"
            "  version 3 the poll image (`poll_image_len`, `poll_image`, marked (v3)), version\n"
            "  4 its holding copy for FC 23 (`poll_image_rw`, marked (v4)); every earlier\n"
            "  entry keeps its address, so a version 1, 2 or 3 client works unchanged.\n",
            SF_REGMAP_VERSION);
    for (int t = 0; t < SF_TBL_N; t++) {
        fprintf(out,
                "\n## %s\n\n"
                "| name | address | ref | count | type | unit | access | min | max | "
                "description |\n"
                "|---|---|---|---|---|---|---|---|---|---|\n",
                titles[t]);
        for (size_t i = 0; i < SF_R_COUNT; i++) {
            const sf_reg_t *r = &regmap[i];
            if ((int)r->table != t)
                continue;
            uint32_t last = (uint32_t)r->address + sf_regmap_span(r) - 1;
            char addr[24], ref[32];
            if (last == r->address) {
                snprintf(addr, sizeof addr, "%u", (unsigned)r->address);
                snprintf(ref, sizeof ref, "%ld", ref1(r, r->address));
            } else {
                snprintf(addr, sizeof addr, "%u-%u", (unsigned)r->address, (unsigned)last);
                snprintf(ref, sizeof ref, "%ld-%ld", ref1(r, r->address), ref1(r, last));
            }
            fprintf(out, "| `%s` | %s | %s | %u | %s | %s | %s | %lld | %lld | %s |\n", r->name,
                    addr, ref, (unsigned)r->count, sf_regmap_type_name(r->type), r->unit,
                    sf_regmap_access_name(r->access), (long long)r->min, (long long)r->max,
                    r->desc);
        }
    }
    sf_poll_image_layout_t l;
    sf_regmap_image_layout(12, 16, &l);
    const sf_reg_t *img = &regmap[SF_R_POLL_IMAGE];
    fprintf(out,
            "\n## Poll image (version 3)\n\n"
            "`poll_image` (input registers %u-%u) holds, as copies, everything a centre's full\n"
            "poll reads, so a unit's state is one read (two for a unit with many groups and\n"
            "detectors) instead of five. The unit refreshes it from the same register image\n"
            "it serves the copied entries from: reading the image or the entries gives the same\n"
            "values. The layout follows from the identity counts `n_sg` and `n_det` (it packs\n"
            "tight); `poll_image_len` says how many registers are in use (registers past it\n"
            "read 0). Offsets from %u, in order:\n\n"
            "| section | offset | registers | copies of |\n"
            "|---|---|---|---|\n"
            "| status | 0 | 12 | `control_mode` .. `tod` (100-111) |\n"
            "| phase status | 12 | 10 | `phase_status_reds` .. `phase_status_next` (140-149) |\n"
            "| lamps | 22 | n_sg | `sg_lamp[0..n_sg)` |\n"
            "| time remaining | 22 + n_sg | n_sg | `sg_time_remaining[0..n_sg)` |\n"
            "| priority | 22 + 2 n_sg | 32 | `prio_status_id`, `_state`, `_reason`, `_phase`, 8 "
            "each |\n"
            "| detector interval | 54 + 2 n_sg | 2 | `det_seq`, `det_interval` |\n"
            "| presence | 56 + 2 n_sg | P = ceil(n_det / 16) | `det_presence` as bitmask16: bit "
            "i of word k = detector 16 k + i |\n"
            "| volumes | 56 + 2 n_sg + P | n_det | `det_volume[0..n_det)` |\n"
            "| occupancies | 56 + 2 n_sg + P + n_det | n_det | `det_occupancy[0..n_det)` |\n\n"
            "`poll_image_len` = 56 + 2 n_sg + 2 n_det + P: %u for 12 groups and 16 detectors\n"
            "(the largest intersection of the default corridor), so one FC 4 read of at most\n"
            "125 registers; a unit with 2 n_sg + 2 n_det + P > 69 needs two reads (three at\n"
            "the very largest, 32 groups and 64 detectors: %u registers). A centre uses the\n"
            "image only when `protocol_version` >= 3 and `poll_image_len` is what the counts\n"
            "give, and falls back to the separate reads when the unit refuses the image read.\n"
            "\n## Poll image by FC 23 (version 4)\n\n"
            "`poll_image_rw` (holding registers %u-%u) is the same image, filled by the same\n"
            "code, as read-only holding registers (a write to it is refused with 02 and changes\n"
            "nothing), so that one FC 23 (read/write multiple registers) writes `heartbeat` and\n"
            "reads the image: a full poll in one request. The write part of an FC 23 passes the\n"
            "same checks as an FC 16 of it (a refused write refuses the whole request, 01, 02\n"
            "or 03, and changes nothing); the read part is checked (1-125 registers inside the\n"
            "holding table, else 03 or 02) before anything is written. The image returned is\n"
            "the unit's state when the request arrived, from before its write: a heartbeat\n"
            "that ends a local fallback returns the image that still shows the fallback, and\n"
            "the next request shows its effect (as reading the image, then writing the\n"
            "heartbeat, would). A centre uses FC 23 only when `protocol_version` >= 4, the\n"
            "part of the image it needs fits one read (at most 125 registers), and the unit\n"
            "has not refused an FC 23; otherwise the image read and the heartbeat write of\n"
            "version 3.\n",
            (unsigned)img->address, (unsigned)(img->address + img->count - 1),
            (unsigned)img->address, (unsigned)l.len, (unsigned)SF_POLL_IMAGE_MAX,
            (unsigned)regmap[SF_R_POLL_IMAGE_RW].address,
            (unsigned)(regmap[SF_R_POLL_IMAGE_RW].address + regmap[SF_R_POLL_IMAGE_RW].count - 1));
    return ferror(out) ? -1 : 0;
}
