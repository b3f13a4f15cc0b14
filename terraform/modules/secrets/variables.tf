variable "name" {
  type        = string
  description = "Prefix of every resource's name."
}

variable "recovery_window_days" {
  type        = number
  description = "Days a deleted secret can still be restored (7–30)."
}
