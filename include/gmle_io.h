/*
 * gmle_io.h -- gmle's data files: streaming readers of .npy, CSV and Kaldi
 * tables, writers of .npy, CSV and Kaldi archives, and model and statistics
 * files.
 *
 * The estimator API it builds on is in gmle.h (included); the conventions
 * there hold here too. The layouts of the model and statistics files are
 * in docs/FORMATS.md.
 */
#ifndef GMLE_IO_H
#define GMLE_IO_H

#include "gmle.h"

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Statistics files                                                         */
/* ------------------------------------------------------------------------ */

/** Save statistics to a file (versioned, CRC-32 checked, laid out as
 *  docs/FORMATS.md says; written to a
 *  temporary file and renamed, so a failure leaves no partial file). Class
 *  names are saved too (any bytes, at most 65536 per name, else
 *  GMLE_E_TOO_LARGE). */
GMLE_API gmle_status gmle_stats_save(const gmle_stats *st, const char *path);
/** Load statistics saved by gmle_stats_save onto ctx. Truncated or
 *  corrupted files give GMLE_E_CORRUPT / GMLE_E_BAD_FORMAT with the offset;
 *  files from a newer format give GMLE_E_UNSUPPORTED_VERSION. */
GMLE_API gmle_status gmle_stats_load(gmle_context *ctx, const char *path,
                                     gmle_stats **out);

/** Save EM statistics (gmle_em_stats_create/add/merge) as a statistics
 *  file with an EM block (K, the EM mode, the log-likelihood sums), so that
 *  one EM iteration runs over shards: 'gmle stats --model', 'gmle merge',
 *  'gmle fit --stats --model'. gmle_stats_load refuses such a file. */
GMLE_API gmle_status gmle_em_stats_save(const gmle_em_stats *es,
                                        const char *path);
/** Load EM statistics saved by gmle_em_stats_save (merge them, or step with
 *  gmle_em_step). */
GMLE_API gmle_status gmle_em_stats_load(gmle_context *ctx, const char *path,
                                        gmle_em_stats **out);

/** Statistics as the bytes of their file, in memory (for sending them to
 *  another process; gmle_mpi does): *size receives the byte count, and the
 *  bytes are written to buf when buf is not NULL (cap must then be at least
 *  *size, else GMLE_E_INVALID_ARG). Call once with buf NULL to size the
 *  buffer. The bytes are exactly what gmle_stats_save writes. */
GMLE_API gmle_status gmle_stats_save_mem(const gmle_stats *st, void *buf,
                                         size_t cap, size_t *size);
/** Load statistics from the `size` bytes at data (from gmle_stats_save_mem
 *  or a statistics file read whole); errors as gmle_stats_load, naming
 *  "<memory>". The bytes are not kept. */
GMLE_API gmle_status gmle_stats_load_mem(gmle_context *ctx, const void *data,
                                         size_t size, gmle_stats **out);
/** gmle_stats_save_mem for EM statistics (gmle_em_stats_save's bytes). */
GMLE_API gmle_status gmle_em_stats_save_mem(const gmle_em_stats *es, void *buf,
                                            size_t cap, size_t *size);
/** gmle_stats_load_mem for EM statistics. */
GMLE_API gmle_status gmle_em_stats_load_mem(gmle_context *ctx, const void *data,
                                            size_t size, gmle_em_stats **out);

/* ------------------------------------------------------------------------ */
/* Model files (.npz readable with numpy.load)                              */
/* ------------------------------------------------------------------------ */

/** Save a model as an uncompressed .npz that numpy.load reads: means,
 *  covariances shaped as scikit-learn's GaussianMixture, priors, counts,
 *  class names, the fit report and (for models from gmle_fit) the training
 *  log-likelihood, so that gmle_model_loglik and gmle_model_information work
 *  on the loaded model. A mixture keeps scikit-learn GaussianMixture's
 *  arrays (weights, means, covariances, precisions_cholesky; with a leading
 *  class axis unless it is one unnamed class) and its EM report. The
 *  members are listed in docs/FORMATS.md. Written to a temporary file and
 *  renamed. */
GMLE_API gmle_status gmle_model_save(const gmle_model *m, const char *path);
/** Load a model saved by gmle_model_save (or written by numpy with the same
 *  arrays; for a mixture, weights, means, covariances and covariance_type
 *  are enough). CRCs, shapes and every parameter are checked and the
 *  Cholesky factors recomputed: GMLE_E_CORRUPT, GMLE_E_BAD_FORMAT,
 *  GMLE_E_UNSUPPORTED_VERSION, GMLE_E_INVALID_MODEL with the member and
 *  offset or class (a mixture's weights not summing to 1 within 1e-6: the
 *  class and the sum). */
GMLE_API gmle_status gmle_model_load(gmle_context *ctx, const char *path,
                                     gmle_model **out);

/* ------------------------------------------------------------------------ */
/* Data files (.npy, CSV): streaming readers and writers                    */
/* ------------------------------------------------------------------------ */
/* Readers stream a data file in batches of rows with bounded memory; the
 * whole file is never loaded. Paths written as Kaldi rspecifiers ("ark:",
 * "scp:", see the Kaldi part below) are Kaldi tables; for other paths
 * the format is chosen from the content: a file
 * starting with the .npy magic "\x93NUMPY" is read as .npy, anything else as
 * delimited text (CSV). Errors name the file and the byte offset (.npy) or
 * line:column (CSV, both 1-based) and come back as GMLE_E_BAD_FORMAT
 * (malformed), GMLE_E_CORRUPT (a .npy file shorter than its header says),
 * GMLE_E_UNSUPPORTED_VERSION (.npy version other than 1.0/2.0/3.0),
 * GMLE_E_UNSUPPORTED (valid but unsupported: an object or integer data
 * dtype, 3-D arrays, pipes, "-"), GMLE_E_EMPTY (a CSV data file with no
 * non-blank line), GMLE_E_INVALID_ARG (options: a label column not found),
 * GMLE_E_IO (system errors, with strerror), GMLE_E_TOO_LARGE or
 * GMLE_E_OUT_OF_MEMORY.
 *
 * CSV rules: fields are separated by one delimiter character (' ' means
 * runs of spaces and tabs); lines end in LF or CRLF; a UTF-8 byte-order
 * mark at the start is skipped; blank lines are skipped; spaces and tabs
 * around a field are trimmed (unless the delimiter is that character). A
 * field may be double-quoted ("a,b", with "" for a quote inside; quoted
 * fields never span lines; a quoted number is still a number). A trailing
 * delimiter (an empty, unquoted last field) is dropped on the first line
 * and on any line where that makes the field count right; any other empty
 * field is an error naming line:column. Numbers are parsed in the C locale
 * whatever LC_NUMERIC says (decimal point '.'); "nan", "inf", "infinity"
 * (any case, optional sign) give NaN/Inf; a value beyond the double range
 * ("1e400", ERANGE overflow) is an error naming line:column, while an
 * underflow ("1e-400") rounds to 0 or a subnormal as strtod does; hex
 * floats ("0x1.8p1") are accepted. A NUL byte anywhere is an error. A row
 * with a different number of fields than the first row is an error naming
 * the line and both counts. Lines may be of any length up to 1 GiB (a line
 * is buffered whole, so memory is bounded by the longest line: a line of
 * more than 1 GiB or 16,777,216 fields is an error naming it, and a data
 * line stops being split 64 fields past the first line's count).
 * Delimiter detection (delimiter 0) looks at the first non-blank line: TAB
 * if it has at least as many tabs as commas and semicolons, else ';' if it
 * has any, else ',' if it has any, else ' ' when it has blanks between
 * fields, else one column. Header detection (header -1): the first line is
 * a header when none of its fields, other than the label column given by
 * index, is a number and one is not empty ("1,2x" is data with a typo, an
 * error), or when label_column is a name found on it; a detected header is
 * reported through the log callback (GMLE_LOG_INFO).
 *
 * Text labels files (labels_only without label_column): one label per
 * line, trimmed of spaces and tabs, CRLF and BOM handled, a label quoted
 * whole ("a, b") is unquoted; blank lines at the end are ignored, a blank
 * line followed by a label is an error. */

/** An open data file. */
typedef struct gmle_reader gmle_reader;

/** Reader options; fill with gmle_reader_options_init() first (struct_size:
 *  see "Option structs" at the top of gmle.h). */
typedef struct gmle_reader_options {
  size_t struct_size; /**< set by gmle_reader_options_init */
  char delimiter;     /**< CSV: 0 = detect among ',' ';' TAB ' ' from the first
                           line; else that character (' ': runs of blanks) */
  int header;         /**< CSV: -1 = detect (the first line is a header when
                           none of its fields is a number), 0 none, 1 yes */
  const char *label_column; /**< CSV: the column holding the labels, as a
                        header name or a 0-based index written as text
                        ("0", "4"); NULL: no label column */
  int ark_dtype;   /**< Kaldi archives: the element type read() produces:
                        0 = from the first matrix (float64 for a "DM"
                        matrix, else float32), or GMLE_F32 / GMLE_F64 */
  int labels_only; /**< 1: the file is a labels file: a .npy of shape (N,)
                        or (N, 1) holding integers of any width (also bool,
                        floats with whole values, and '<U'/'|S' strings),
                        or text with one label per line, or (with
                        label_column) one column of a CSV whose other
                        columns are not parsed. read() then yields only
                        label texts and cols() is 0 */
} gmle_reader_options;

/** Fill opt with the defaults: struct_size = sizeof *opt, delimiter 0
 *  (detect), header -1 (detect), label_column NULL, ark_dtype 0,
 *  labels_only 0. */
GMLE_API void gmle_reader_options_init(gmle_reader_options *opt);

/** Open `path` for reading (opt NULL: defaults). A Kaldi rspecifier
 *  ("ark:FILE", "scp:FILE", "ark:-" for stdin; see "Kaldi tables" below)
 *  opens a Kaldi table; otherwise the format comes from the content (.npy
 *  magic, else CSV/text) and "-" (stdin) is not supported.
 *  .npy: versions 1.0, 2.0, 3.0; dtypes float32, float64, float16 (read as
 *  float64), either byte order, C or Fortran order, shapes (N,), (N, D) and
 *  () (one value); integer dtypes only with labels_only. A file shorter than
 *  its header claims is rejected here with both byte counts. CSV: the first
 *  line is read to find the delimiter, the header and the column count.
 *  On error *out is NULL and gmle_context_error(ctx) says why. */
GMLE_API gmle_status gmle_reader_open(gmle_context *ctx, const char *path,
                                      const gmle_reader_options *opt,
                                      gmle_reader **out);
/** Close a reader. NULL is a no-op. */
GMLE_API void gmle_reader_free(gmle_reader *r);
/** Feature columns per row (the label column excluded); 0 for labels_only.
 *  A 1-D .npy (N,) has one column. */
GMLE_API size_t gmle_reader_cols(const gmle_reader *r);
/** 1 and *n = the row count when it is known up front (.npy), 0 when not
 *  (CSV/text and Kaldi tables: count by reading to the end). */
GMLE_API int gmle_reader_rows(const gmle_reader *r, uint64_t *n);
/** The element type read() produces: GMLE_F32 for float32 .npy, GMLE_F64
 *  for float64 and float16 .npy and for CSV (and for labels_only readers,
 *  which produce no values); for Kaldi tables see ark_dtype. */
GMLE_API gmle_dtype gmle_reader_dtype(const gmle_reader *r);
/** Read up to max_rows rows into buf: row-major, row stride = cols(), in
 *  the reader's dtype, native byte order, C order (Fortran-order files are
 *  transposed batch by batch). *n_read receives the rows read; 0 means the
 *  end of the file. buf may be NULL when cols() is 0. labels: NULL, or an
 *  array of max_rows pointers receiving each row's label text (owned by the
 *  reader, valid until its next read, rewind or free) when the reader has a
 *  label column or is labels_only; integer .npy labels come as decimal text
 *  (gmle_reader_read_int_labels gives them as int64).
 *  Non-finite values are passed through (gmle_stats_add validates them).
 *  On error no row of the failing call is counted as read. */
GMLE_API gmle_status gmle_reader_read(gmle_reader *r, void *buf,
                                      size_t max_rows, size_t *n_read,
                                      const char **labels);
/** 1 when every label of the reader is an exact int64 that
 *  gmle_reader_read_int_labels returns without formatting text: a
 *  labels_only .npy of a signed integer dtype (int8 to int64), bool,
 *  uint8 to uint32, or floats (whole values, checked as they are read),
 *  and a labels_only Kaldi table (alignments: int32 vectors). 0
 *  otherwise: text and CSV labels, string and uint64 .npy (uint64 may
 *  exceed int64), readers without labels. */
GMLE_API int gmle_reader_int_labels(const gmle_reader *r);
/** Read up to max_rows labels of a reader for which gmle_reader_int_labels
 *  is 1 into labels[] as int64 (bool as 0/1): the values gmle_reader_read
 *  gives as decimal text, with no text made. It shares the reader's
 *  position with gmle_reader_read (and, for Kaldi tables, sets what
 *  gmle_reader_utterances returns). *n_read receives the count; 0
 *  at the end. GMLE_E_UNSUPPORTED when the labels are not integers; a
 *  float label that is not whole is GMLE_E_BAD_FORMAT naming its row, as
 *  for gmle_reader_read; on error no row of the call is counted as read. */
GMLE_API gmle_status gmle_reader_read_int_labels(gmle_reader *r,
                                                 int64_t *labels,
                                                 size_t max_rows,
                                                 size_t *n_read);
/** Go back to the first data row. */
GMLE_API gmle_status gmle_reader_rewind(gmle_reader *r);
/** Go to data row `row` (0-based): the next read starts there, and
 *  gmle_reader_offset is `row` (the row count when `row` is beyond the last
 *  row: the next read then returns 0 rows). .npy files jump there; CSV and
 *  text files skip the lines before it without parsing their values (and
 *  remember where that row starts, so that seeking to it again reads
 *  nothing); Kaldi tables read the frames before it ("ark:-":
 *  GMLE_E_UNSUPPORTED, as rewind). For reading one share of a file's rows
 *  (gmle-mpi: each process its own). */
GMLE_API gmle_status gmle_reader_seek(gmle_reader *r, uint64_t row);
/** The number of data rows into *n: gmle_reader_rows when the format
 *  stores it, else counted (CSV and text: one pass over the lines without
 *  parsing values; Kaldi tables: every frame read). The reader is then at
 *  its first row. */
GMLE_API gmle_status gmle_reader_count_rows(gmle_reader *r, uint64_t *n);
/** Rows read so far (since open or the last rewind), or the row of the last
 *  gmle_reader_seek plus the rows read since. */
GMLE_API uint64_t gmle_reader_offset(const gmle_reader *r);
/** CSV: the 1-based line of the file that row i of the last read came
 *  from (blank lines and the header are not rows); 0 for other formats or
 *  when i is not a row of the last read. */
GMLE_API uint64_t gmle_reader_row_line(const gmle_reader *r, size_t i);
/** The header name of feature column j (label column excluded) for CSV
 *  files with a header; NULL otherwise or when j >= cols(). */
GMLE_API const char *gmle_reader_column_name(const gmle_reader *r, size_t j);
/** The detected format: "npy", "csv", "text" (a labels_only file with
 *  one label per line), or "ark" (a Kaldi table: "ark:", "scp:", memory). */
GMLE_API const char *gmle_reader_format(const gmle_reader *r);

/* Kaldi tables. gmle_reader_open also takes the rspecifiers of Kaldi:
 * "ark:FILE" (an archive: "KEY " then one object, repeated), "scp:FILE" (a
 * script file: lines "KEY FILE" or "KEY FILE:OFFSET", the object at that
 * byte offset of FILE, which has no key before it), and "ark:-" (an
 * archive on standard input, read once: rewind is GMLE_E_UNSUPPORTED).
 * Options before the colon ("ark,t:", "ark,s,cs:", "scp,p:") are accepted
 * and ignored: binary or text is detected per object. Pipes ("cmd |") and
 * ranges ("FILE:OFFSET[0:9]") are GMLE_E_UNSUPPORTED.
 *
 * Objects: binary ("\0B" then the object) float and double matrices
 * ("FM ", "DM ": the size byte 4 and an int32 before rows and before
 * columns, then the values row by row, little endian), compressed matrices
 * ("CM ", "CM2 ", "CM3 ") decoded to float exactly as Kaldi's
 * CompressedMatrix::CopyToMat does, and text matrices ("[", rows ended by
 * a line break, "]"); with labels_only, integer vectors as Kaldi writes
 * alignments (binary: size byte 4 + int32 count, then size byte 4 + int32
 * per element; text: the integers up to the end of the line), one label
 * per element. Every matrix is one utterance: its rows are frames, read
 * row by row into the batches of gmle_reader_read (which fills whole
 * batches across utterances); nothing is allocated from a size in the
 * file before that size is checked against the bytes that remain
 * (files), and data are streamed, never held whole (a CM matrix, whose
 * bytes are stored column by column, is buffered compressed, growing as
 * its bytes arrive). Text "nan"/"inf" values are read as NaN/Inf and left
 * to the non-finite checks of gmle_stats_add/gmle_score (which name batch,
 * row and column).
 *
 * Malformed input is GMLE_E_BAD_ARK with a message naming the file, the
 * byte offset and the key: a vector where a matrix is expected, a size
 * byte other than 4, rows or columns <= 0, rows*cols*size beyond the bytes
 * that remain, truncated data, a key not followed by a space, ragged or
 * malformed text rows, an unknown object type; a matrix whose column
 * count differs from the first one's is GMLE_E_DIM_MISMATCH. Empty
 * matrices (which Kaldi writes as 0 x 0) are refused like any matrix with
 * no rows. Keys are limited to 65536 bytes and text rows to 1 GiB. */

/** One utterance's part of the rows of the last gmle_reader_read. */
typedef struct gmle_utterance {
  const char *key; /**< the utterance's key; owned by the reader, valid
                        until its next read, rewind or free */
  uint64_t index;  /**< 0-based position of the utterance in the table */
  uint64_t frame0; /**< frame (row of the matrix) of its first row here */
  size_t row0;     /**< its first row in the buffer of that read */
  size_t n_rows;   /**< its rows in that read */
  int last;        /**< 1: the utterance ends in that read (its last frame
                        is frame0 + n_rows - 1) */
} gmle_utterance;

/** The utterances of the rows returned by the last gmle_reader_read of a
 *  Kaldi reader, in order: *out receives an array (owned by the reader,
 *  valid until its next read, rewind or free) whose row0/n_rows cover
 *  the rows read, and the count is returned. 0 (and *out NULL) for other
 *  readers and after a read of 0 rows. An utterance longer than a batch
 *  comes in several reads with the same index. */
GMLE_API size_t gmle_reader_utterances(const gmle_reader *r,
                                       const gmle_utterance **out);

/** Open a Kaldi archive held in memory (data[0..size), not copied: it
 *  must outlive the reader): the same parser as "ark:" files, for tools
 *  and fuzzing. Rewind works. Errors as for gmle_reader_open, with the
 *  name "<memory>". */
GMLE_API gmle_status gmle_reader_open_ark_memory(gmle_context *ctx,
                                                 const void *data, size_t size,
                                                 const gmle_reader_options *opt,
                                                 gmle_reader **out);

/** Element types a writer stores. */
typedef enum gmle_elem {
  GMLE_ELEM_F32, /**< float, .npy '<f4', CSV %.9g */
  GMLE_ELEM_F64, /**< double, .npy '<f8', CSV %.17g */
  GMLE_ELEM_I32, /**< int32_t, .npy '<i4' */
  GMLE_ELEM_I64, /**< int64_t, .npy '<i8' */
  GMLE_ELEM_STR  /**< const char * (UTF-8), .npy '<U{str_width}' */
} gmle_elem;

/** A data file being written. */
typedef struct gmle_writer gmle_writer;

/** Start writing `path`: CSV when the name ends in ".csv" (any case), else
 *  .npy version 1.0 (little endian, C order). The file is written to a
 *  temporary file in the same directory and renamed into place by
 *  gmle_writer_commit(), so a failed or aborted write leaves no file
 *  (a symlink's target is replaced; an existing file keeps its mode). A
 *  character device, a FIFO or "-" (standard output) is written straight
 *  through; a .npy there must be seekable (GMLE_E_UNSUPPORTED otherwise).
 *  The shape is (N, cols), or (N,) when cols is 0 (one element per row);
 *  N is the total of the rows written. str_width: for GMLE_ELEM_STR the
 *  largest string length in characters (code points); ignored otherwise.
 *  CSV files have no header; numbers are formatted in the C locale; strings
 *  are quoted when they hold the delimiter, a quote or a line break. */
GMLE_API gmle_status gmle_writer_open(gmle_context *ctx, const char *path,
                                      gmle_elem elem, size_t cols,
                                      size_t str_width, gmle_writer **out);
/** Append n_rows rows: n_rows * max(cols, 1) elements of the writer's
 *  type, row-major; for GMLE_ELEM_STR an array of const char * (NULL is
 *  written as ""). A string longer than str_width is GMLE_E_INVALID_ARG.
 *  After an error the writer can only be aborted. */
GMLE_API gmle_status gmle_writer_write(gmle_writer *w, const void *rows,
                                       size_t n_rows);
/** Finish: patch the row count into the .npy header, flush, fsync, rename
 *  the temporary file into place, and free the writer (also on error, in
 *  which case the temporary file is removed). */
GMLE_API gmle_status gmle_writer_commit(gmle_writer *w);
/** Remove the temporary file and free the writer. NULL is a no-op. */
GMLE_API void gmle_writer_abort(gmle_writer *w);

/* One .npy output written by several processes at once (gmle-mpi's score
 * and classify), each its own rows at their place:
 *  1. the owner opens the output with gmle_writer_open and gives the name
 *     of its temporary file (gmle_writer_temp_path) to the others;
 *  2. each other process opens that file with gmle_writer_open_part (the
 *     same elem, cols and str_width);
 *  3. every process writes its rows with gmle_writer_write_at;
 *  4. the parts are committed (their rows flushed, synced, the file
 *     closed), then the owner sets the total with gmle_writer_set_rows and
 *     commits: the header, the rename into place.
 * If anything fails, the owner aborts, which removes the file the parts
 * wrote to; a part's abort only closes it. */

/** The temporary file an owner's .npy output is written to (valid until
 *  commit or abort), or NULL for a CSV output, an output written straight
 *  through (a device, "-") and a part. */
GMLE_API const char *gmle_writer_temp_path(const gmle_writer *w);
/** Open another process's output (its gmle_writer_temp_path) to write rows
 *  at their place (gmle_writer_write_at only). The file must exist and be
 *  a regular file (GMLE_E_IO otherwise). */
GMLE_API gmle_status gmle_writer_open_part(gmle_context *ctx,
                                           const char *temp_path,
                                           gmle_elem elem, size_t cols,
                                           size_t str_width, gmle_writer **out);
/** Write n_rows rows (as gmle_writer_write) at rows [row, row + n_rows) of
 *  a .npy output, wherever the others are (GMLE_E_UNSUPPORTED for CSV and
 *  for outputs that cannot seek). A writer written at places is not
 *  appended to with gmle_writer_write (GMLE_E_INVALID_ARG). The owner's
 *  row count becomes the end of its last rows unless set. */
GMLE_API gmle_status gmle_writer_write_at(gmle_writer *w, uint64_t row,
                                          const void *rows, size_t n_rows);
/** The owner's row count for the header written at commit (the rows of
 *  every process). GMLE_E_INVALID_ARG for a part or a CSV output. */
GMLE_API gmle_status gmle_writer_set_rows(gmle_writer *w, uint64_t n_rows);

/** A raw output (the command's text tables) written the way every gmle
 *  output is: a regular file (or a new name, or a symlink's target) through
 *  a temporary file in its directory, renamed into place by
 *  gmle_outfile_commit() and keeping the replaced file's mode; a character
 *  device, a FIFO or "-" (standard output) straight through. */
typedef struct gmle_outfile gmle_outfile;
GMLE_API gmle_status gmle_outfile_open(gmle_context *ctx, const char *path,
                                       gmle_outfile **out);
/** The stream to write to (owned by the output). */
GMLE_API FILE *gmle_outfile_file(gmle_outfile *o);
/** Flush (a write error that stdio kept is reported here), fsync, close,
 *  rename into place; frees the output, removing the temporary file on
 *  error. */
GMLE_API gmle_status gmle_outfile_commit(gmle_outfile *o);
/** Remove the temporary file and free the output. NULL is a no-op. */
GMLE_API void gmle_outfile_abort(gmle_outfile *o);
/** Remove the temporary file of every output not yet committed or aborted
 *  (gmle_writer, gmle_ark_writer, gmle_output, model and statistics
 *  saves). Async-signal-safe: meant for SIGINT/SIGTERM/SIGHUP handlers,
 *  so that an interrupted run leaves no temporary file. */
GMLE_API void gmle_remove_temporary_files(void);

/** A Kaldi archive being written. */
typedef struct gmle_ark_writer gmle_ark_writer;

/** Start writing a Kaldi archive. wspecifier: "ark:FILE" (binary, what
 *  Kaldi writes by default) or "ark,t:FILE" (text); the options b, t, f,
 *  nf, p are accepted (b/t choose the mode), "ark:-", "scp" and pipes are
 *  GMLE_E_UNSUPPORTED. elem: GMLE_ELEM_F32 ("FM" matrices, "FV" vectors)
 *  or GMLE_ELEM_F64 ("DM", "DV"). cols >= 1: every object is a matrix of
 *  that many columns; cols 0: every object is a vector. Text numbers are
 *  written with %.9g (float) or %.17g (double) in the C locale, so they
 *  read back exactly; binary values are written bit for bit. The file is
 *  written to a temporary file and renamed by gmle_ark_writer_commit. */
GMLE_API gmle_status gmle_ark_writer_open(gmle_context *ctx,
                                          const char *wspecifier,
                                          gmle_elem elem, size_t cols,
                                          gmle_ark_writer **out);
/** Start the object of `key` (non-empty, no whitespace, < 65536 bytes;
 *  GMLE_E_INVALID_ARG otherwise). The previous object must be ended. */
GMLE_API gmle_status gmle_ark_writer_begin(gmle_ark_writer *w, const char *key);
/** Append n_rows rows (n_rows * max(cols, 1) elements, row-major; for
 *  vectors, n_rows elements) to the current object. At most INT32_MAX rows
 *  per object (GMLE_E_TOO_LARGE). */
GMLE_API gmle_status gmle_ark_writer_rows(gmle_ark_writer *w, const void *rows,
                                          size_t n_rows);
/** End the current object (its row count is written into its header). An
 *  object with no rows is GMLE_E_INVALID_ARG (gmle reads none back). */
GMLE_API gmle_status gmle_ark_writer_end(gmle_ark_writer *w);
/** begin + rows + end: one whole object. */
GMLE_API gmle_status gmle_ark_writer_put(gmle_ark_writer *w, const char *key,
                                         const void *rows, size_t n_rows);
/** Finish: flush, fsync, rename into place, free the writer (also on
 *  error, removing the temporary file). An object still open is an
 *  error. */
GMLE_API gmle_status gmle_ark_writer_commit(gmle_ark_writer *w);
/** Remove the temporary file and free the writer. NULL is a no-op. */
GMLE_API void gmle_ark_writer_abort(gmle_ark_writer *w);

#ifdef __cplusplus
}
#endif

#endif /* GMLE_IO_H */
