//! Whisper's encoder and decoder on candle, with weights read from a CTranslate2
//! `model.bin`.
//!
//! candle-transformers' Whisper decoder keeps a cache for cross-attention only and
//! recomputes the whole token prefix at every step (about 3× slower on our windows), and
//! it expects safetensors names; so the (small) network is written here with a
//! self-attention KV cache, over the same candle tensor ops, loading CTranslate2's fused
//! projections directly.

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{D, DType, Device, Module, Tensor};

use crate::ct2::{Ct2Model, FormatError};

/// Shapes of the network, read from the weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dims {
    pub n_mels: usize,
    pub n_audio_ctx: usize,
    pub n_state: usize,
    pub n_head: usize,
    pub n_audio_layer: usize,
    pub n_text_ctx: usize,
    pub n_text_layer: usize,
    pub n_vocab: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Format(#[from] FormatError),
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("{0}")]
    Unsupported(String),
}

struct Linear {
    /// Stored transposed, `in × out`, so `x · w` reads the weight contiguously.
    w: Tensor,
    b: Option<Tensor>,
}

impl Linear {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let y = x.broadcast_matmul(&self.w)?;
        match &self.b {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }
}

struct LayerNorm {
    gamma: Tensor,
    beta: Tensor,
}

impl LayerNorm {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        candle_nn::ops::layer_norm(x, &self.gamma, &self.beta, 1e-5)
    }
}

struct SelfAttention {
    ln: LayerNorm,
    qkv: Linear,
    out: Linear,
}

struct CrossAttention {
    ln: LayerNorm,
    q: Linear,
    kv: Linear,
    out: Linear,
}

struct Mlp {
    ln: LayerNorm,
    fc1: Linear,
    fc2: Linear,
}

impl Mlp {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let h = crate::ops::gelu_erf(&self.fc1.forward(&self.ln.forward(x)?)?)?;
        x + self.fc2.forward(&h)?
    }
}

struct EncoderLayer {
    attn: SelfAttention,
    mlp: Mlp,
}

struct DecoderLayer {
    attn: SelfAttention,
    cross: CrossAttention,
    mlp: Mlp,
}

pub struct Whisper {
    pub dims: Dims,
    device: Device,
    conv1: (Tensor, Tensor),
    conv2: (Tensor, Tensor),
    enc_pos: Tensor,
    encoder: Vec<EncoderLayer>,
    enc_ln: LayerNorm,
    /// Token embeddings in f16 (as shipped): only a few rows are looked up per step, and
    /// f32 would hold another 40 MB.
    embedding: Tensor,
    /// The output projection (tied to `embedding`) in Q8_0: each decoded token multiplies
    /// the whole vocabulary table (51,865 × 384), which in f32 is 80 MB read per token;
    /// Q8_0 reads a quarter of that with candle's SIMD dot products.
    logits: QMatMul,
    dec_pos: Tensor,
    decoder: Vec<DecoderLayer>,
    dec_ln: LayerNorm,
}

/// Per-window decoder state: cross-attention keys/values of the window's audio (computed
/// once), and the self-attention keys/values of the tokens decoded so far.
#[derive(Clone)]
pub struct KvCache {
    cross: Vec<(Tensor, Tensor)>,
    this: Vec<Option<(Tensor, Tensor)>>,
    /// Number of token positions already in the cache.
    pub len: usize,
}

impl KvCache {
    /// Forget decoded tokens, keep the audio (used for temperature fallback).
    pub fn reset(&mut self) {
        self.this.iter_mut().for_each(|c| *c = None);
        self.len = 0;
    }
}

fn tensor(m: &Ct2Model, name: &str, device: &Device) -> Result<Tensor, LoadError> {
    let v = m.get(name)?;
    if v.dtype == crate::ct2::DType::F16 {
        // candle's (optimised, vectorised) conversion: most of the cold start otherwise.
        let t = Tensor::from_raw_buffer(v.data, DType::F16, v.shape.as_slice(), device)?;
        return Ok(t.to_dtype(DType::F32)?);
    }
    let data = v.to_f32()?;
    Ok(Tensor::from_vec(data, v.shape.as_slice(), device)?)
}

/// A variable kept in f16, as CTranslate2 ships the models.
fn tensor_f16(m: &Ct2Model, name: &str, device: &Device) -> Result<Tensor, LoadError> {
    let v = m.get(name)?;
    if v.dtype == crate::ct2::DType::F16 {
        return Ok(Tensor::from_raw_buffer(v.data, DType::F16, v.shape.as_slice(), device)?);
    }
    Ok(Tensor::from_vec(v.to_f32()?, v.shape.as_slice(), device)?.to_dtype(DType::F16)?)
}

/// A Q8_0 copy of a large matrix, quantized a slab of rows at a time so that no f32 copy
/// of the whole (80 MB for the vocabulary table) exists at start-up.
fn quantize_q8_0(w: &Tensor) -> Result<QTensor, LoadError> {
    const SLAB: usize = 2048;
    let (rows, cols) = w.dims2()?;
    let mut raw = Vec::with_capacity(rows * cols / 32 * 34);
    for start in (0..rows).step_by(SLAB) {
        let slab = w.narrow(0, start, SLAB.min(rows - start))?.to_dtype(DType::F32)?;
        raw.extend_from_slice(&QTensor::quantize(&slab, GgmlDType::Q8_0)?.data()?);
    }
    Ok(candle_core::quantized::ggml_file::qtensor_from_ggml(GgmlDType::Q8_0, &raw, vec![rows, cols], w.device())?)
}

fn linear(m: &Ct2Model, prefix: &str, device: &Device, bias: bool) -> Result<Linear, LoadError> {
    let w = tensor(m, &format!("{prefix}/weight"), device)?.t()?;
    let b = if bias { Some(tensor(m, &format!("{prefix}/bias"), device)?) } else { None };
    Ok(Linear { w, b })
}

fn layer_norm(m: &Ct2Model, prefix: &str, device: &Device) -> Result<LayerNorm, LoadError> {
    Ok(LayerNorm {
        gamma: tensor(m, &format!("{prefix}/gamma"), device)?,
        beta: tensor(m, &format!("{prefix}/beta"), device)?,
    })
}

fn self_attention(m: &Ct2Model, p: &str, d: &Device) -> Result<SelfAttention, LoadError> {
    Ok(SelfAttention {
        ln: layer_norm(m, &format!("{p}/layer_norm"), d)?,
        qkv: linear(m, &format!("{p}/linear_0"), d, true)?,
        out: linear(m, &format!("{p}/linear_1"), d, true)?,
    })
}

fn mlp(m: &Ct2Model, p: &str, d: &Device) -> Result<Mlp, LoadError> {
    Ok(Mlp {
        ln: layer_norm(m, &format!("{p}/layer_norm"), d)?,
        fc1: linear(m, &format!("{p}/linear_0"), d, true)?,
        fc2: linear(m, &format!("{p}/linear_1"), d, true)?,
    })
}

fn count_layers(m: &Ct2Model, side: &str) -> usize {
    (0..).take_while(|i| m.variables.contains_key(&format!("{side}/layer_{i}/ffn/linear_0/weight"))).count()
}

/// `[1, T, H·Dh]` → `[1, H, T, Dh]`.
fn heads(x: &Tensor, n_head: usize) -> candle_core::Result<Tensor> {
    let (b, t, c) = x.dims3()?;
    x.reshape((b, t, n_head, c / n_head))?.transpose(1, 2)?.contiguous()
}

fn merge_heads(x: &Tensor) -> candle_core::Result<Tensor> {
    let (b, h, t, d) = x.dims4()?;
    x.transpose(1, 2)?.reshape((b, t, h * d))
}

fn attend(q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>) -> candle_core::Result<Tensor> {
    let (_, n_head, t_q, _) = q.dims4()?;
    // The encoder's 1500×1500 score matrices are 9 MB per head: one head at a time keeps
    // the peak memory ~90 MB lower for the same arithmetic.
    if t_q >= 512 && n_head > 1 && mask.is_none() {
        let mut outs = Vec::with_capacity(n_head);
        for h in 0..n_head {
            let (qh, kh, vh) = (q.narrow(1, h, 1)?, k.narrow(1, h, 1)?, v.narrow(1, h, 1)?);
            let d = qh.dim(D::Minus1)? as f64;
            let w = crate::ops::scaled_softmax_last_dim(&qh.matmul(&kh.t()?)?, (1.0 / d.sqrt()) as f32)?;
            outs.push(w.matmul(&vh)?);
        }
        return merge_heads(&Tensor::cat(&outs, 1)?);
    }
    let d = q.dim(D::Minus1)? as f64;
    let scale = (1.0 / d.sqrt()) as f32;
    let w = match mask {
        // The mask is 0 or -inf, so it is the same added before or after scaling.
        Some(m) => crate::ops::scaled_softmax_last_dim(&q.matmul(&k.t()?)?.broadcast_add(m)?, scale)?,
        None => crate::ops::scaled_softmax_last_dim(&q.matmul(&k.t()?)?, scale)?,
    };
    merge_heads(&w.matmul(v)?)
}

impl Whisper {
    /// Build the network from a parsed `model.bin`, converting weights to f32 (candle's
    /// CPU kernels are fastest in f32; the tiny model is 150 MB that way).
    pub fn load(m: &Ct2Model, device: &Device) -> Result<Whisper, LoadError> {
        if m.spec != "WhisperSpec" {
            return Err(LoadError::Unsupported(format!("model spec is `{}`, not WhisperSpec", m.spec)));
        }
        let flag = |name: &str| m.variables.get(name).and_then(|v| v.scalar_i64());
        // CTranslate2 ActivationType 3 is exact (erf) GELU, the only one Whisper uses.
        if flag("decoder/activation").is_some_and(|a| a != 3) {
            return Err(LoadError::Unsupported("decoder activation is not GELU".into()));
        }
        if flag("decoder/pre_norm") == Some(0) || flag("decoder/scale_embeddings").is_some_and(|s| s != 0) {
            return Err(LoadError::Unsupported("not a pre-norm Whisper decoder".into()));
        }
        let n_head = flag("encoder/num_heads")
            .filter(|&h| h > 0)
            .ok_or_else(|| LoadError::Unsupported("encoder/num_heads is missing".into()))?
            as usize;
        let d = device;
        let conv1 = (tensor(m, "encoder/conv1/weight", d)?, tensor(m, "encoder/conv1/bias", d)?);
        let conv2 = (tensor(m, "encoder/conv2/weight", d)?, tensor(m, "encoder/conv2/bias", d)?);
        let enc_pos = tensor(m, "encoder/position_encodings/encodings", d)?;
        let embedding = tensor_f16(m, "decoder/embeddings/weight", d)?;
        let dec_pos = tensor(m, "decoder/position_encodings/encodings", d)?;
        let (n_vocab, n_state) = embedding.dims2()?;
        let (n_audio_ctx, _) = enc_pos.dims2()?;
        let (n_text_ctx, _) = dec_pos.dims2()?;
        let n_mels = conv1.0.dims3()?.1;
        if n_state % n_head != 0 {
            return Err(LoadError::Unsupported(format!("width {n_state} is not divisible by {n_head} heads")));
        }
        let n_audio_layer = count_layers(m, "encoder");
        let n_text_layer = count_layers(m, "decoder");
        let mut encoder = Vec::with_capacity(n_audio_layer);
        for i in 0..n_audio_layer {
            let p = format!("encoder/layer_{i}");
            encoder.push(EncoderLayer {
                attn: self_attention(m, &format!("{p}/self_attention"), d)?,
                mlp: mlp(m, &format!("{p}/ffn"), d)?,
            });
        }
        let mut decoder = Vec::with_capacity(n_text_layer);
        for i in 0..n_text_layer {
            let p = format!("decoder/layer_{i}");
            decoder.push(DecoderLayer {
                attn: self_attention(m, &format!("{p}/self_attention"), d)?,
                cross: CrossAttention {
                    ln: layer_norm(m, &format!("{p}/attention/layer_norm"), d)?,
                    q: linear(m, &format!("{p}/attention/linear_0"), d, true)?,
                    kv: linear(m, &format!("{p}/attention/linear_1"), d, true)?,
                    out: linear(m, &format!("{p}/attention/linear_2"), d, true)?,
                },
                mlp: mlp(m, &format!("{p}/ffn"), d)?,
            });
        }
        let dims = Dims { n_mels, n_audio_ctx, n_state, n_head, n_audio_layer, n_text_ctx, n_text_layer, n_vocab };
        if n_audio_layer == 0 || n_text_layer == 0 || n_audio_ctx * 2 != crate::mel::N_FRAMES {
            return Err(LoadError::Unsupported(format!("unexpected model shape {dims:?}")));
        }
        Ok(Whisper {
            dims,
            device: device.clone(),
            conv1,
            conv2,
            enc_pos,
            encoder,
            enc_ln: layer_norm(m, "encoder/layer_norm", d)?,
            logits: QMatMul::from_qtensor(quantize_q8_0(&embedding)?)?,
            embedding,
            dec_pos,
            decoder,
            dec_ln: layer_norm(m, "decoder/layer_norm", d)?,
        })
    }

    /// Encode one 30 s window of log-mel features (`n_mels × 3000`, row-major).
    pub fn encode(&self, mel: &[f32]) -> candle_core::Result<Tensor> {
        let frames = mel.len() / self.dims.n_mels;
        let x = Tensor::from_slice(mel, (1, self.dims.n_mels, frames), &self.device)?;
        let gelu = crate::ops::gelu_erf;
        let x = gelu(&x.conv1d(&self.conv1.0, 1, 1, 1, 1)?.broadcast_add(&self.conv1.1.reshape((1, (), 1))?)?)?;
        let x = gelu(&x.conv1d(&self.conv2.0, 1, 2, 1, 1)?.broadcast_add(&self.conv2.1.reshape((1, (), 1))?)?)?;
        let mut x = x.transpose(1, 2)?.broadcast_add(&self.enc_pos)?;
        for layer in &self.encoder {
            let a = &layer.attn;
            let h = a.qkv.forward(&a.ln.forward(&x)?)?;
            let n = self.dims.n_state;
            let q = heads(&h.narrow(2, 0, n)?, self.dims.n_head)?;
            let k = heads(&h.narrow(2, n, n)?, self.dims.n_head)?;
            let v = heads(&h.narrow(2, 2 * n, n)?, self.dims.n_head)?;
            x = (x + a.out.forward(&attend(&q, &k, &v, None)?)?)?;
            x = layer.mlp.forward(&x)?;
        }
        self.enc_ln.forward(&x)
    }

    /// A fresh cache for a window whose encoder output is `audio`.
    pub fn cache(&self, audio: &Tensor) -> candle_core::Result<KvCache> {
        let n = self.dims.n_state;
        let mut cross = Vec::with_capacity(self.decoder.len());
        for layer in &self.decoder {
            let kv = layer.cross.kv.forward(audio)?;
            cross
                .push((heads(&kv.narrow(2, 0, n)?, self.dims.n_head)?, heads(&kv.narrow(2, n, n)?, self.dims.n_head)?));
        }
        Ok(KvCache { cross, this: vec![None; self.decoder.len()], len: 0 })
    }

    /// Run `tokens` (continuing after the `cache.len` already seen) through the decoder and
    /// return the logits at the positions in `rows` (indices into `tokens`), each a
    /// vocabulary-sized vector.
    pub fn decode(&self, tokens: &[u32], cache: &mut KvCache, rows: &[usize]) -> candle_core::Result<Vec<Vec<f32>>> {
        let n_tok = tokens.len();
        let offset = cache.len;
        if offset + n_tok > self.dims.n_text_ctx {
            candle_core::bail!("decoder context of {} tokens exceeded", self.dims.n_text_ctx);
        }
        let ids = Tensor::from_slice(tokens, (n_tok,), &self.device)?;
        let mut x = self
            .embedding
            .index_select(&ids, 0)?
            .to_dtype(DType::F32)?
            .broadcast_add(&self.dec_pos.narrow(0, offset, n_tok)?)?
            .unsqueeze(0)?;
        // Causal mask over [cached + new] keys, needed only when several tokens go in at once.
        let mask = if n_tok > 1 {
            let total = offset + n_tok;
            let m: Vec<f32> = (0..n_tok)
                .flat_map(|i| (0..total).map(move |j| if j > offset + i { f32::NEG_INFINITY } else { 0.0 }))
                .collect();
            Some(Tensor::from_vec(m, (n_tok, total), &self.device)?)
        } else {
            None
        };
        let n = self.dims.n_state;
        for (i, layer) in self.decoder.iter().enumerate() {
            let a = &layer.attn;
            let h = a.qkv.forward(&a.ln.forward(&x)?)?;
            let q = heads(&h.narrow(2, 0, n)?, self.dims.n_head)?;
            let mut k = heads(&h.narrow(2, n, n)?, self.dims.n_head)?;
            let mut v = heads(&h.narrow(2, 2 * n, n)?, self.dims.n_head)?;
            if let Some((pk, pv)) = &cache.this[i] {
                k = Tensor::cat(&[pk, &k], 2)?;
                v = Tensor::cat(&[pv, &v], 2)?;
            }
            cache.this[i] = Some((k.clone(), v.clone()));
            x = (&x + a.out.forward(&attend(&q, &k, &v, mask.as_ref())?)?)?;

            let c = &layer.cross;
            let q = heads(&c.q.forward(&c.ln.forward(&x)?)?, self.dims.n_head)?;
            let (ck, cv) = &cache.cross[i];
            x = (&x + c.out.forward(&attend(&q, ck, cv, None)?)?)?;
            x = layer.mlp.forward(&x)?;
        }
        cache.len += n_tok;
        let x = self.dec_ln.forward(&x)?.squeeze(0)?;
        let mut out = Vec::with_capacity(rows.len());
        for &r in rows {
            // Tied output projection: logits = h · Eᵀ.
            let logits = self.logits.forward(&x.narrow(0, r, 1)?)?;
            out.push(logits.squeeze(0)?.to_dtype(DType::F32)?.to_vec1::<f32>()?);
        }
        Ok(out)
    }
}
