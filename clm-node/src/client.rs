//! `Handle` (the native side of `Clm`) and `Actor`.
//!
//! The package's `Clm` class (index.js, generated from bindings/api.json)
//! has one camelCase method per operation; each calls `Handle.call` or
//! `Handle.callAs` with the operation's name and an object of its named
//! arguments. This file only converts: the actor, the arguments to JSON,
//! the progress callback; then `clm::api::call` on napi's tokio runtime.

use std::sync::Mutex;

use napi::bindgen_prelude::{
    Function, PromiseRaw, ToNapiValue, TypeTag, Unknown, ValueType, validate_type_tag,
};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, JsValue, sys};
use napi_derive::napi;
use serde_json::Value;

use crate::convert::{arguments_to_json, is_absent, to_json};
use crate::errors::{Failure, js_error};

/// Who performs an operation: from `clm.systemActor()`,
/// `clm.validateSession()`, `clm.authenticateApiKey()` or
/// `clm.actorForUser()`. Opaque.
#[napi]
pub struct Actor {
    inner: clm::Actor,
}

#[napi]
impl Actor {
    /// `{kind: "user" | "api_key" | "system", user_id, session_id,
    /// api_key_id, organization_ids}`.
    #[napi]
    pub fn describe(&self) -> Value {
        clm::api::describe_actor(&self.inner)
    }

    /// Shows the description, never the actor's permissions.
    #[napi(js_name = "toJSON")]
    pub fn to_json(&self) -> Value {
        self.describe()
    }
}

/// What a call resolves with: a record (plain object), an `Actor`, or
/// `undefined` for operations that return nothing.
pub enum Output {
    Value(Value),
    Actor(Actor),
    Nothing,
}

impl ToNapiValue for Output {
    unsafe fn to_napi_value(env: sys::napi_env, output: Self) -> napi::Result<sys::napi_value> {
        unsafe {
            match output {
                Output::Value(value) => Value::to_napi_value(env, value),
                Output::Actor(actor) => Actor::to_napi_value(env, actor),
                Output::Nothing => <()>::to_napi_value(env, ()),
            }
        }
    }
}

/// A progress callback, called from the core's thread without blocking it;
/// what the callback returns or throws is ignored.
type ProgressCallback = ThreadsafeFunction<Value, Unknown<'static>, Value, napi::Status, false>;

/// An open clm. After `close()` every call rejects with code `CLOSED`.
#[napi]
pub struct Handle {
    inner: Mutex<Option<clm::Clm>>,
}

impl Handle {
    fn core(&self) -> clm::Result<clm::Clm> {
        self.inner
            .lock()
            .map_err(|_| clm::Error::Internal("the handle's lock is poisoned".into()))?
            .clone()
            .ok_or(clm::Error::Closed)
    }

    /// Runs operation `name`: converts the actor, the arguments and the
    /// callback on the JS thread, then calls the core on the tokio runtime.
    /// Every failure, a wrong JS type included, rejects the Promise.
    fn run<'env>(
        &self,
        env: &'env Env,
        name: String,
        actor: Option<Unknown<'env>>,
        args: Unknown<'env>,
        progress: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, Output>> {
        let prepared = (|| -> Result<Prepared, Failure> {
            let actor = actor.map(|actor| actor_of(env, actor)).transpose()?;
            let input = arguments_to_json(env, args)?;
            let progress = progress_callback(progress)?;
            Ok((self.core()?, actor, input, progress))
        })();
        env.spawn_future_with_callback(
            async move {
                let (core, actor, input, progress) = match prepared {
                    Ok(prepared) => prepared,
                    Err(failure) => return Ok(Err(failure)),
                };
                let sink = progress.map(|callback| {
                    move |step: Value| {
                        // NonBlocking: a slow callback never holds the work up.
                        let _ = callback.call_with_return_value(
                            step,
                            ThreadsafeFunctionCallMode::NonBlocking,
                            |_returned, _env| Ok(()),
                        );
                    }
                });
                let sink_ref = sink
                    .as_ref()
                    .map(|sink| sink as &(dyn Fn(Value) + Send + Sync));
                let reply = clm::api::call(&core, actor.as_ref(), &name, input, sink_ref).await;
                Ok(reply.map_err(Failure::Core))
            },
            |env, reply| match reply {
                Ok(clm::api::Reply::Actor(actor, _)) => Ok(Output::Actor(Actor { inner: actor })),
                Ok(clm::api::Reply::Value(Value::Null)) => Ok(Output::Nothing),
                Ok(clm::api::Reply::Value(value)) => Ok(Output::Value(value)),
                Err(failure) => Err(failure.into_js(env)),
            },
        )
    }
}

type Prepared = (
    clm::Clm,
    Option<clm::Actor>,
    Value,
    Option<ProgressCallback>,
);

/// The core actor inside an `Actor` instance.
fn actor_of(env: &Env, value: Unknown<'_>) -> Result<clm::Actor, Failure> {
    let wrong = || {
        Failure::type_error(
            "actor",
            "must be an Actor (from systemActor(), validateSession(), \
             authenticateApiKey() or actorForUser())",
        )
    };
    if !matches!(value.get_type(), Ok(ValueType::Object)) {
        return Err(wrong());
    }
    // The type tag proves the object wraps an Actor (not another class, not
    // a prototype lookalike) before the pointer is read; the actor is cloned
    // at once, on the JS thread that owns it.
    unsafe {
        validate_type_tag(
            env.raw(),
            value.raw(),
            &<Actor as TypeTag>::type_tag(),
            "Actor",
        )
        .map_err(|_| wrong())?;
        let mut wrapped: *mut std::ffi::c_void = std::ptr::null_mut();
        let status = sys::napi_unwrap(env.raw(), value.raw(), &mut wrapped);
        if status != sys::Status::napi_ok || wrapped.is_null() {
            return Err(wrong());
        }
        Ok((*wrapped.cast::<Actor>()).inner.clone())
    }
}

fn progress_callback(value: Unknown<'_>) -> Result<Option<ProgressCallback>, Failure> {
    if is_absent(&value) {
        return Ok(None);
    }
    if !matches!(value.get_type(), Ok(ValueType::Function)) {
        return Err(Failure::type_error("on_progress", "must be a function"));
    }
    let build = || -> napi::Result<ProgressCallback> {
        let function: Function<'_, Value, Unknown<'static>> = unsafe { value.cast()? };
        function
            .build_threadsafe_function::<Value>()
            .callee_handled::<false>()
            .build()
    };
    build().map(Some).map_err(|err| {
        Failure::type_error("on_progress", format!("cannot be called: {}", err.reason))
    })
}

#[napi]
impl Handle {
    /// Opens clm with the `OpenOptions` of the API description.
    #[napi]
    pub fn open<'env>(
        env: &'env Env,
        options: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, Handle>> {
        let options = to_json(env, options, "options");
        env.spawn_future_with_callback(
            async move {
                let opened = async {
                    let config = clm::api::OpenOptions::parse(options?)?.into_config()?;
                    Ok::<_, Failure>(clm::Clm::open(config).await?)
                };
                Ok(opened.await)
            },
            |env, opened| match opened {
                Ok(clm) => Ok(Handle {
                    inner: Mutex::new(Some(clm)),
                }),
                Err(failure) => Err(failure.into_js(env)),
            },
        )
    }

    /// Closes both databases; later calls reject with code `CLOSED`. Idempotent.
    #[napi]
    pub fn close<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        let taken = self.inner.lock().ok().and_then(|mut inner| inner.take());
        env.spawn_future(async move {
            if let Some(clm) = taken {
                clm.close().await;
            }
            Ok(())
        })
    }

    /// The host application's own actor. Throws with code `CLOSED` after
    /// `close()`.
    #[napi]
    pub fn system_actor(&self, env: &Env) -> napi::Result<Actor> {
        let clm = self.core().map_err(|err| js_error(env, err))?;
        Ok(Actor {
            inner: clm.system_actor(),
        })
    }

    /// Runs an operation that takes no actor. `args` is an object of the
    /// named arguments (absent ones left out or null); `progress` an
    /// optional callback.
    #[napi]
    pub fn call<'env>(
        &self,
        env: &'env Env,
        name: String,
        args: Unknown<'env>,
        progress: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, Output>> {
        self.run(env, name, None, args, progress)
    }

    /// Runs an operation as `actor`, which must be an `Actor`.
    #[napi]
    pub fn call_as<'env>(
        &self,
        env: &'env Env,
        actor: Unknown<'env>,
        name: String,
        args: Unknown<'env>,
        progress: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, Output>> {
        self.run(env, name, Some(actor), args, progress)
    }
}
