#!/usr/bin/env bash
# Rebuilds corpus/decode/ from ../testdata: the first few tenths of a second of each
# recording, remuxed (-c copy: the original encoding, with headers that agree with the
# shorter length) or, for the WAV variants, converted; a few KB each. Needs ffmpeg.
set -euo pipefail
cd "$(dirname "$0")"
in=../testdata out=corpus/decode
mkdir -p "$out"
ff() { ffmpeg -nostdin -loglevel error -y "$@"; }
meta=(-map_metadata -1 -fflags +bitexact)
ff -i "$in/jfk.wav" -t 0.2 -c copy "${meta[@]}" "$out/pcm16-16k-mono.wav"
ff -i "$in/jfk.wav" -t 0.05 -ar 44100 -ac 2 -c:a pcm_s16le "${meta[@]}" "$out/pcm16-44k-stereo.wav"
ff -i "$in/espeak.wav" -ss 1 -t 0.1 -ar 8000 -c:a pcm_f32le "${meta[@]}" "$out/float-8k-mono.wav"
# FLAC is re-encoded (losslessly): a copy keeps the 3 s total in STREAMINFO.
ff -i "$in/jfk-3s.flac" -t 0.25 -c:a flac -frame_size 1024 "${meta[@]}" "$out/flac-16k.flac"
ff -i "$in/jfk.mp3" -t 0.4 -c copy "${meta[@]}" "$out/mp3-22k.mp3"
ff -i "$in/jfk.mp3" -t 0.4 -c copy "${meta[@]}" -id3v2_version 0 -write_xing 0 "$out/mp3-bare.mp3"
ff -i "$in/jfk.ogg" -t 0.3 -c copy "${meta[@]}" "$out/vorbis-44k-stereo.ogg"
ff -i "$in/jfk.opus" -t 0.3 -c copy "${meta[@]}" "$out/opus-mono.opus"
ff -i "$in/jfk.webm" -t 0.3 -c copy "${meta[@]}" -f webm -live 1 "$out/opus-stereo-live.webm"
ff -i "$in/jfk.m4a" -t 0.3 -c copy "${meta[@]}" -movflags +faststart "$out/aac-44k.m4a"
ff -i "$in/jfk.m4a" -t 0.3 -c copy "${meta[@]}" -f adts "$out/aac-44k.aac"
ff -i "$in/jfk-vorbis.webm" -t 0.3 -c copy "${meta[@]}" -f webm -live 1 "$out/vorbis-stereo-live.webm"
ff -i "$in/jfk-5.1.opus" -t 0.2 -c copy "${meta[@]}" "$out/opus-5.1.opus"
