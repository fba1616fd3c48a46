//! The simulator's per-request columns from numpy arrays: times, token counts and the conversations
//! (sessions, turns, parents, shared prefixes and prefix-cache blocks), each checked where it enters.

use crate::error::CoreError;
use crate::sim::caches::Turn;
use crate::sim::Conversations;
use crate::time::Nanos;
use numpy::PyReadonlyArray1;
use pyo3::prelude::*;

/// Token counts, one per request.
pub(super) fn counts(arr: &PyReadonlyArray1<'_, i64>, arg: &'static str) -> PyResult<Vec<u32>> {
    arr.as_array()
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            u32::try_from(v).map_err(|_| {
                CoreError::invalid_at(arg, i, format!("= {v} is not a token count"), "pass counts in 0..2^32")
                    .into()
            })
        })
        .collect()
}

/// Times in seconds, one per request, checked and rounded to the clock's nanoseconds.
pub(super) fn times(arr: &PyReadonlyArray1<'_, f64>, arg: &'static str) -> PyResult<Vec<Nanos>> {
    arr.as_array().iter().enumerate().map(|(i, &v)| Ok(Nanos::from_secs(v, arg, Some(i))?)).collect()
}

/// The names of the four per-request conversation columns, in the order [`turns`] takes them.
const TURN_COLUMNS: [&str; 4] = ["session", "turn", "parent", "shared_prefix_tokens"];

/// The conversation columns as the simulator takes them (all four per-request columns or none).
pub(super) fn conversations(
    n: usize,
    columns: [Option<PyReadonlyArray1<'_, i64>>; 4],
    block_offsets: Option<PyReadonlyArray1<'_, i64>>,
    block_ids: Option<PyReadonlyArray1<'_, u64>>,
    (block_tokens, device_cache_tokens, cloud_cache_tokens): (u32, u64, u64),
) -> PyResult<Conversations> {
    let turns = if columns.iter().any(Option::is_some) { turns(n, &columns)? } else { Vec::new() };
    let (block_offsets, block_ids) = blocks(block_offsets, block_ids)?;
    Ok(Conversations {
        turns,
        block_offsets,
        block_ids,
        block_tokens,
        device_cache_tokens,
        cloud_cache_tokens,
    })
}

/// One turn per request from the session, turn, parent and shared-prefix columns (a parent of -1: none).
fn turns(n: usize, columns: &[Option<PyReadonlyArray1<'_, i64>>; 4]) -> PyResult<Vec<Turn>> {
    let mut cols: Vec<Vec<i64>> = Vec::with_capacity(4);
    for (col, name) in columns.iter().zip(TURN_COLUMNS) {
        let Some(col) = col else {
            return Err(CoreError::invalid(
                name,
                "is missing",
                "pass session, turn, parent and shared_prefix_tokens together",
            )
            .into());
        };
        let v = col.as_array().to_vec();
        if v.len() != n {
            return Err(CoreError::invalid(
                name,
                format!("has {} entries for {n} requests", v.len()),
                "pass one value per request",
            )
            .into());
        }
        cols.push(v);
    }
    let mut turns = Vec::new();
    #[allow(clippy::needless_range_loop)] // one row across the four columns
    for i in 0..n {
        let value = |c: usize, lo: i64| -> PyResult<u32> {
            let v = cols[c][i];
            if v < lo || v > i64::from(u32::MAX) {
                return Err(CoreError::invalid_at(
                    TURN_COLUMNS[c],
                    i,
                    format!("= {v} is out of range"),
                    "pass a whole number in range",
                )
                .into());
            }
            Ok(u32::try_from(v.max(0)).expect("checked"))
        };
        let parent = value(2, -1)?;
        turns.push(Turn {
            device: value(0, 0)?,
            session: value(0, 0)?,
            parent: (cols[2][i] >= 0).then_some(parent),
            shared: value(3, 0)?,
            turn: value(1, 1)?,
            prompt: 0,
        });
    }
    Ok(turns)
}

/// The prefix-cache blocks: request `i`'s are `block_ids[block_offsets[i]..block_offsets[i + 1]]` (both
/// or neither).
fn blocks(
    block_offsets: Option<PyReadonlyArray1<'_, i64>>,
    block_ids: Option<PyReadonlyArray1<'_, u64>>,
) -> PyResult<(Vec<usize>, Vec<u64>)> {
    match (block_offsets, block_ids) {
        (Some(o), Some(b)) => {
            let offsets = o
                .as_array()
                .iter()
                .map(|&v| {
                    usize::try_from(v).map_err(|_| {
                        CoreError::invalid("block_offsets", format!("holds {v}"), "pass offsets >= 0")
                    })
                })
                .collect::<std::result::Result<Vec<_>, _>>()?;
            Ok((offsets, b.as_array().to_vec()))
        }
        (None, None) => Ok((Vec::new(), Vec::new())),
        _ => Err(CoreError::invalid(
            "block_ids",
            "and block_offsets are not given together",
            "pass both or neither",
        )
        .into()),
    }
}
