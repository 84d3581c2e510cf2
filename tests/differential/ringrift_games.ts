// Plays seeded random games with RingRift's TypeScript shared engine and writes, per game,
// one JSON line: every position's legal moves, the move played and the position after it.
//
//   npx tsx ringrift_games.ts RINGRIFT_DIR BOARD PLAYERS FIRST_SEED GAMES [MAX_MOVES]
//
// RINGRIFT_DIR is a checkout of synaptent/RingRift (only src/shared is read). The moves
// are chosen uniformly from the engine's own legal list; where that list is empty in a
// line or territory phase the host's bookkeeping move (no_line_action,
// no_territory_action) is played, as RingRift's hosts do. The swap rule is off.

import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

type Json = Record<string, unknown>;
type Pos = { x: number; y: number; z?: number };

function rng(seed: number): () => number {
  // mulberry32: a small seeded generator, enough to pick moves reproducibly
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pos(p: Pos | undefined): Pos | undefined {
  if (!p) return undefined;
  return p.z === undefined || p.z === null ? { x: p.x, y: p.y } : { x: p.x, y: p.y, z: p.z };
}

const MOVE_FIELDS = [
  'placementCount',
  'recoveryOption',
  'recoveryMode',
  'eliminationContext',
  'extractionStacks',
] as const;

function moveJson(m: Json): Json {
  const out: Json = { type: m.type, player: m.player };
  for (const k of ['from', 'to', 'captureTarget'] as const) {
    const p = pos(m[k] as Pos | undefined);
    if (p) out[k] = p;
  }
  for (const k of MOVE_FIELDS) if (m[k] !== undefined) out[k] = m[k];
  const lines = m.formedLines as { positions: Pos[] }[] | undefined;
  if (lines?.length) out.formedLines = lines.map((l) => ({ positions: l.positions.map(pos) }));
  const regions = m.disconnectedRegions as { spaces: Pos[] }[] | undefined;
  if (regions?.length) out.disconnectedRegions = regions.map((r) => ({ spaces: r.spaces.map(pos) }));
  for (const k of ['collapsedMarkers', 'collapsePositions'] as const) {
    const ps = m[k] as Pos[] | undefined;
    if (ps?.length) out[k] = ps.map(pos);
  }
  return out;
}

function stateJson(s: any): Json {
  const stacks: Json = {};
  for (const [k, st] of s.board.stacks.entries()) {
    stacks[k] = { rings: st.rings, controllingPlayer: st.controllingPlayer };
  }
  const markers: Json = {};
  for (const [k, mk] of s.board.markers.entries()) markers[k] = { player: mk.player };
  const collapsed: Json = {};
  for (const [k, owner] of s.board.collapsedSpaces.entries()) collapsed[k] = owner;
  return {
    board: { stacks, markers, collapsedSpaces: collapsed },
    players: s.players.map((p: any) => ({
      playerNumber: p.playerNumber,
      ringsInHand: p.ringsInHand,
      eliminatedRings: p.eliminatedRings,
      territorySpaces: p.territorySpaces,
    })),
    currentPlayer: s.currentPlayer,
    currentPhase: s.currentPhase,
    gameStatus: s.gameStatus,
    winner: s.winner ?? null,
  };
}

function bookkeeping(s: any): Json | undefined {
  const kind: Record<string, string> = {
    line_processing: 'no_line_action',
    territory_processing: 'no_territory_action',
    movement: 'no_movement_action',
    ring_placement: 'no_placement_action',
  };
  const type = kind[s.currentPhase];
  if (!type) return undefined;
  return { id: `host-${type}`, type, player: s.currentPlayer, to: { x: 0, y: 0 } };
}

async function main(): Promise<void> {
  const [dir, board, players, firstSeed, games, maxMoves] = process.argv.slice(2);
  if (!games) {
    console.error('usage: tsx ringrift_games.ts RINGRIFT_DIR BOARD PLAYERS FIRST_SEED GAMES [MAX]');
    process.exit(2);
  }
  const engineDir = path.join(path.resolve(dir), 'src', 'shared', 'engine');
  const load = async (file: string): Promise<any> => {
    const mod = await import(pathToFileURL(path.join(engineDir, file)).href);
    return mod.default && !mod.getValidMoves && !mod.createInitialGameState ? mod.default : mod;
  };
  const engine = await load('initialState.ts');
  const orchestrator = await load(path.join('orchestration', 'turnOrchestrator.ts'));
  const limit = Number(maxMoves ?? 4000);
  const n = Number(players);
  for (let g = 0; g < Number(games); g++) {
    const seed = Number(firstSeed) + g;
    const random = rng(seed);
    const seats = Array.from({ length: n }, (_, i) => ({
      id: `p${i + 1}`,
      username: `p${i + 1}`,
      type: 'ai',
      playerNumber: i + 1,
      isReady: true,
      timeRemaining: 0,
      ringsInHand: 0,
      eliminatedRings: 0,
      territorySpaces: 0,
    }));
    const timeControl = { initialTime: 600, increment: 0, type: 'rapid' };
    let state = engine.createInitialGameState(`diff-${seed}`, board, seats, timeControl, false, seed, {
      swapRuleEnabled: false,
    });
    state = { ...state, gameStatus: 'active' };
    const steps: Json[] = [];
    let error: string | undefined;
    while (state.gameStatus === 'active' && steps.length < limit) {
      let legal: Json[] = orchestrator.getValidMoves(state);
      let synthesized = false;
      if (legal.length === 0) {
        const host = bookkeeping(state);
        if (!host) {
          error = `no legal move in phase ${state.currentPhase}`;
          break;
        }
        legal = [host];
        synthesized = true;
      }
      const choice = Math.floor(random() * legal.length);
      const moveNumber = state.moveHistory.length + 1;
      const move = { ...legal[choice], timestamp: new Date(), thinkTime: 0, moveNumber };
      try {
        // hosts append the applied move to the history after processTurn returns
        const next = orchestrator.processTurn(state, move).nextState;
        state = { ...next, moveHistory: [...next.moveHistory, move] };
      } catch (err) {
        error = `move ${steps.length + 1} (${String(move.type)}) raised: ${String(err)}`;
        break;
      }
      steps.push({
        legal: legal.map(moveJson),
        choice,
        synthesized,
        after: stateJson(state),
      });
    }
    const out = { board, numPlayers: n, seed, steps, status: state.gameStatus, error };
    process.stdout.write(JSON.stringify(out) + '\n');
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
