// Python columns without copies (columns.h).
#include "python/columns.h"

#include <pybind11/numpy.h>

#include <cmath>

#include "common/json_writer.h"

namespace assent::python {
namespace {

std::string Where(const Column& col, size_t row) {
  return "row " + std::to_string(row) + " of '" + col.name() + "'";
}

std::string TypeName(PyObject* v) { return Py_TYPE(v)->tp_name; }

// A str's bytes (borrowed from the object; a compact ASCII str is not copied at all).
std::optional<std::string_view> Utf8(PyObject* v) {
  Py_ssize_t n = 0;
  const char* s = PyUnicode_AsUTF8AndSize(v, &n);
  if (s == nullptr) {
    PyErr_Clear();  // a lone surrogate: not UTF-8
    return std::nullopt;
  }
  return std::string_view(s, static_cast<size_t>(n));
}

bool IsInt(PyObject* v) {
  if (PyBool_Check(v)) return false;
  if (PyLong_Check(v)) return true;
  // NumPy integer scalars are not PyLong but have __index__.
  return PyIndex_Check(v) && !PyFloat_Check(v);
}

std::optional<std::string> IntText(PyObject* v) {
  PyObject* n = PyNumber_Index(v);
  if (n == nullptr) {
    PyErr_Clear();
    return std::nullopt;
  }
  PyObject* s = PyObject_Str(n);
  Py_DECREF(n);
  if (s == nullptr) {
    PyErr_Clear();
    return std::nullopt;
  }
  auto text = Utf8(s);
  std::optional<std::string> out = text ? std::optional<std::string>(std::string(*text)) : std::nullopt;
  Py_DECREF(s);
  return out;
}

// Any JSON-able value: what a signal field may hold (a string, a number, a bool, a dict).
Status WriteValue(PyObject* v, JsonWriter& w, const Column& col, size_t row, int depth) {
  if (depth > 32) return InvalidArgumentError(Where(col, row) + ": nested more than 32 deep");
  if (IsMissing(v)) {
    w.Null();
  } else if (PyUnicode_Check(v)) {
    auto s = Utf8(v);
    if (!s) return InvalidArgumentError(Where(col, row) + ": a str that is not valid UTF-8");
    w.String(*s);
  } else if (PyBool_Check(v)) {
    w.Bool(v == Py_True);
  } else if (IsInt(v)) {
    auto text = IntText(v);
    if (!text) return InvalidArgumentError(Where(col, row) + ": an integer that cannot be read");
    w.RawValue(*text);
  } else if (PyFloat_Check(v)) {
    const double d = PyFloat_AsDouble(v);
    if (!std::isfinite(d)) return InvalidArgumentError(Where(col, row) + ": an infinite number");
    w.Double(d);
  } else if (PyDict_Check(v)) {
    w.BeginObject();
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    while (PyDict_Next(v, &pos, &key, &value)) {
      auto k = PyUnicode_Check(key) ? Utf8(key) : std::nullopt;
      if (!k) return InvalidArgumentError(Where(col, row) + ": a dict key that is not a str");
      w.Key(*k);
      ASSENT_RETURN_IF_ERROR(WriteValue(value, w, col, row, depth + 1));
    }
    w.EndObject();
  } else if (PyList_Check(v) || PyTuple_Check(v) || py::isinstance<py::array>(v)) {
    py::object seq = py::reinterpret_steal<py::object>(PySequence_Fast(v, "a sequence"));
    if (!seq) {
      PyErr_Clear();
      return InvalidArgumentError(Where(col, row) + ": cannot read the sequence");
    }
    w.BeginArray();
    const Py_ssize_t n = PySequence_Fast_GET_SIZE(seq.ptr());
    PyObject** items = PySequence_Fast_ITEMS(seq.ptr());
    for (Py_ssize_t i = 0; i < n; ++i) ASSENT_RETURN_IF_ERROR(WriteValue(items[i], w, col, row, depth + 1));
    w.EndArray();
  } else if (PyObject_HasAttrString(v, "item") && PyObject_HasAttrString(v, "dtype")) {
    // A NumPy scalar (np.str_ is a str; np.float64 a float): its Python value.
    py::object plain = py::reinterpret_borrow<py::object>(v).attr("item")();
    if (plain.ptr() == v) return InvalidArgumentError(Where(col, row) + ": cannot read " + TypeName(v));
    return WriteValue(plain.ptr(), w, col, row, depth);
  } else {
    return InvalidArgumentError(Where(col, row) + ": a " + TypeName(v) +
                                " cannot go into a manifest (use str, int, float, bool, list or dict)");
  }
  return OkStatus();
}

}  // namespace

bool IsMissing(PyObject* v) {
  if (v == Py_None) return true;
  if (PyFloat_Check(v)) return std::isnan(PyFloat_AS_DOUBLE(v));
  return false;
}

Result<Column> Column::Of(py::handle values, std::string name, size_t rows) {
  Column c;
  c.name_ = std::move(name);
  if (PyUnicode_Check(values.ptr()) || values.is_none()) {
    c.broadcast_ = true;
    c.one_ = values.ptr();
    c.keep_ = py::reinterpret_borrow<py::object>(values);
    c.size_ = rows;
    return c;
  }
  if (py::isinstance<py::array>(values)) {
    py::array arr = py::reinterpret_borrow<py::array>(values);
    if (arr.ndim() != 1) {
      return InvalidArgumentError("'" + c.name_ + "' must be one-dimensional, not " +
                                  std::to_string(arr.ndim()) + "-dimensional");
    }
    if (arr.dtype().kind() == 'O' && (arr.flags() & py::array::c_style)) {
      c.keep_ = arr;
      c.items_ = static_cast<PyObject* const*>(arr.data());
      c.size_ = static_cast<size_t>(arr.shape(0));
    }
  }
  if (c.items_ == nullptr) {
    PyObject* fast = PySequence_Fast(values.ptr(), "");
    if (fast == nullptr) {
      PyErr_Clear();
      return InvalidArgumentError("'" + c.name_ + "' must be a sequence (list, NumPy array, pandas "
                                  "Series) or one str for every row, not " + TypeName(values.ptr()));
    }
    c.keep_ = py::reinterpret_steal<py::object>(fast);
    c.items_ = PySequence_Fast_ITEMS(fast);
    c.size_ = static_cast<size_t>(PySequence_Fast_GET_SIZE(fast));
  }
  if (rows != 0 && c.size_ != rows) {
    return InvalidArgumentError("'" + c.name_ + "' has " + std::to_string(c.size_) +
                                " values for " + std::to_string(rows) + " rows");
  }
  return c;
}

Result<std::string_view> IdText(PyObject* v, const Column& col, size_t row, std::string* scratch) {
  if (PyUnicode_Check(v)) {
    auto s = Utf8(v);
    if (!s) return InvalidArgumentError(Where(col, row) + ": a str that is not valid UTF-8");
    return *s;
  }
  if (IsInt(v)) {
    auto text = IntText(v);
    if (!text) return InvalidArgumentError(Where(col, row) + ": an integer that cannot be read");
    *scratch = std::move(*text);
    return std::string_view(*scratch);
  }
  return InvalidArgumentError(Where(col, row) + ": an id must be a str (or an int), not " +
                              TypeName(v));
}

Status AppendSubjects(PyObject* v, const Column& col, size_t row,
                      std::vector<std::string_view>* out, std::vector<std::string>* scratch) {
  if (IsMissing(v)) return OkStatus();
  std::string text;
  if (PyUnicode_Check(v) || IsInt(v)) {
    ASSENT_ASSIGN_OR_RETURN(auto id, IdText(v, col, row, &text));
    if (!text.empty()) id = scratch->emplace_back(std::move(text));
    out->push_back(id);
    return OkStatus();
  }
  if (!PyList_Check(v) && !PyTuple_Check(v) && !py::isinstance<py::array>(v)) {
    return InvalidArgumentError(Where(col, row) + ": subjects must be a list of ids, not " +
                                TypeName(v));
  }
  py::object seq = py::reinterpret_steal<py::object>(PySequence_Fast(v, ""));
  if (!seq) {
    PyErr_Clear();
    return InvalidArgumentError(Where(col, row) + ": cannot read the subjects");
  }
  const Py_ssize_t n = PySequence_Fast_GET_SIZE(seq.ptr());
  PyObject** items = PySequence_Fast_ITEMS(seq.ptr());
  for (Py_ssize_t i = 0; i < n; ++i) {
    ASSENT_ASSIGN_OR_RETURN(auto id, IdText(items[i], col, row, &text));
    if (!text.empty()) {
      // A converted int: owned here (reserved by the caller so views stay valid).
      id = scratch->emplace_back(std::move(text));
      text.clear();
    }
    out->push_back(id);
  }
  return OkStatus();
}

Result<std::string> ManifestLines(const RowColumns& c, size_t rows) {
  JsonWriter w;
  w.Reserve(rows * 96);
  std::string scratch;
  // `ints`: an int is read as its decimal text (ids); otherwise it stays a number (and the
  // gate says the line is malformed, as it would of the file).
  auto id_field = [&](const char* key, const Column& col, size_t row, bool ints) -> Status {
    PyObject* v = col.at(row);
    if (IsMissing(v)) return OkStatus();
    if (PyUnicode_Check(v) || (ints && IsInt(v))) {
      ASSENT_ASSIGN_OR_RETURN(auto text, IdText(v, col, row, &scratch));
      w.Key(key).String(text);
      return OkStatus();
    }
    w.Key(key);
    return WriteValue(v, w, col, row, 0);  // the gate says why it is malformed
  };
  for (size_t row = 0; row < rows; ++row) {
    w.BeginObject();
    ASSENT_RETURN_IF_ERROR(id_field("id", *c.ids, row, true));
    ASSENT_RETURN_IF_ERROR(id_field("category", *c.categories, row, false));
    if (c.subjects && !IsMissing(c.subjects->at(row))) {
      PyObject* v = c.subjects->at(row);
      if (PyUnicode_Check(v) || IsInt(v)) {  // one subject
        ASSENT_ASSIGN_OR_RETURN(auto text, IdText(v, *c.subjects, row, &scratch));
        w.Key("subjects").BeginArray().String(text).EndArray();
      } else if (PyList_Check(v) || PyTuple_Check(v) || py::isinstance<py::array>(v)) {
        py::object seq = py::reinterpret_steal<py::object>(PySequence_Fast(v, ""));
        if (!seq) {
          PyErr_Clear();
          return InvalidArgumentError(Where(*c.subjects, row) + ": cannot read the subjects");
        }
        w.Key("subjects").BeginArray();
        const Py_ssize_t n = PySequence_Fast_GET_SIZE(seq.ptr());
        PyObject** items = PySequence_Fast_ITEMS(seq.ptr());
        for (Py_ssize_t i = 0; i < n; ++i) {
          if (IsInt(items[i])) {
            ASSENT_ASSIGN_OR_RETURN(auto text, IdText(items[i], *c.subjects, row, &scratch));
            w.String(text);
          } else {
            ASSENT_RETURN_IF_ERROR(WriteValue(items[i], w, *c.subjects, row, 1));
          }
        }
        w.EndArray();
      } else {
        w.Key("subjects");
        ASSENT_RETURN_IF_ERROR(WriteValue(v, w, *c.subjects, row, 0));
      }
    }
    if (c.accounts) ASSENT_RETURN_IF_ERROR(id_field("account", *c.accounts, row, true));
    for (const auto& [field, col] : c.signals) {
      PyObject* v = col->at(row);
      if (IsMissing(v)) continue;
      w.Key(field);
      ASSENT_RETURN_IF_ERROR(WriteValue(v, w, *col, row, 0));
    }
    w.EndObject();
    w.Newline();
  }
  return w.Take();
}

}  // namespace assent::python
