// What every generated method of `Clm` (index.js) shares: the native
// handle behind a `Clm`, the call into the addon, and the integer checks.
//
// JSON numbers are JS doubles, so an integer argument that is fractional,
// out of its schema's range (`uint32`, `minimum`...) or beyond 2^53 - 1
// (where doubles stop being exact) is refused here, naming the field, with
// the same error shape as the core's InvalidInput. Other kinds of wrong
// values pass on: the addon refuses what has no JSON form (a TypeError),
// the core everything else.
'use strict'

/** Deeper than any input of clm; the addon refuses such nesting anyway. */
const MAX_DEPTH = 64
const TOKEN = Symbol('clm.Clm')

module.exports = function runtime({ native, errors, shapes, arguments: argumentShapes }) {
  const numbers = new Map(errors)
  /** Each `Clm` and its native `Handle`; nothing else is a `Clm`. */
  const handles = new WeakMap()

  function handleOf(clm) {
    const handle = handles.get(clm)
    if (handle === undefined) throw new TypeError('not a Clm: open one with await Clm.open({...})')
    return handle
  }

  /** An InvalidInput error as the core makes them (`invalid FIELD: REASON`). */
  function invalid(field, reason) {
    const error = new Error(`invalid ${field}: ${reason}`)
    return Object.assign(error, {
      code: 'INVALID_INPUT',
      number: numbers.get('INVALID_INPUT'),
      field,
      entity: null,
      violations: [],
    })
  }

  function checkInteger(value, low, high, field) {
    if (typeof value !== 'number' || !Number.isFinite(value)) return
    if (!Number.isInteger(value)) throw invalid(field, `must be an integer, not ${value}`)
    if (value > high && high === Number.MAX_SAFE_INTEGER) {
      throw invalid(field, `must be at most ${high} (larger JS numbers are not exact integers), not ${value}`)
    }
    if (value < low || value > high) throw invalid(field, `must be an integer from ${low} to ${high}, not ${value}`)
  }

  function check(value, shape, field, depth) {
    if (value === undefined || value === null || depth > MAX_DEPTH) return
    const isObject = typeof value === 'object' && !Array.isArray(value)
    switch (shape[0]) {
      case 'int':
        return checkInteger(value, shape[1], shape[2], field)
      case 'ref':
        return check(value, shapes[shape[1]], field, depth + 1)
      case 'obj':
        if (!isObject) return
        for (const [key, inner] of Object.entries(shape[1])) {
          if (Object.hasOwn(value, key)) check(value[key], inner, `${field}.${key}`, depth + 1)
        }
        return
      case 'arr':
        if (Array.isArray(value)) value.forEach((item, index) => check(item, shape[1], `${field}[${index}]`, depth + 1))
        return
      case 'map':
        if (!isObject) return
        for (const key of Object.keys(value)) check(value[key], shape[1], `${field}.${key}`, depth + 1)
    }
  }

  /** Refuses out-of-range integers in `args` (the named arguments of `name`). */
  function checkArguments(name, args) {
    for (const [argument, shape] of Object.entries(argumentShapes[name] ?? {})) {
      check(args[argument], shape, argument, 0)
    }
  }

  /** Checks, then runs `start()`; a refusal rejects instead of throwing. */
  function run(name, args, start) {
    try {
      checkArguments(name, args)
    } catch (error) {
      return Promise.reject(error)
    }
    return start()
  }

  return {
    /** Makes `clm` the wrapper of `handle`; only `open` holds the token. */
    adopt(clm, token, handle) {
      if (token !== TOKEN) throw new TypeError('Clm cannot be constructed: open one with await Clm.open({...})')
      handles.set(clm, handle)
    },
    open(Clm, options) {
      return run('open', { options }, () => native.Handle.open(options).then((handle) => new Clm(TOKEN, handle)))
    },
    close(clm) {
      return handleOf(clm).close()
    },
    systemActor(clm) {
      return handleOf(clm).systemActor()
    },
    /** An operation without an actor. Throws at once only when `clm` is not a Clm. */
    call(clm, name, args, progress) {
      const handle = handleOf(clm)
      return run(name, args, () => handle.call(name, args, progress))
    },
    /** An operation as `actor` (the addon checks it is an Actor). */
    callAs(clm, actor, name, args, progress) {
      const handle = handleOf(clm)
      return run(name, args, () => handle.callAs(actor, name, args, progress))
    },
    isClmError(value) {
      return value instanceof Error && typeof value.code === 'string' && typeof value.number === 'number'
        && Array.isArray(value.violations)
    },
  }
}
